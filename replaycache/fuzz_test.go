package replaycache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/senderbound/senderbound/replaycache"
)

// modelEntry is one entry of the reference model, in insertion order.
type modelEntry struct {
	key      int
	deadline time.Time
}

// model is a plain reimplementation of the documented LRU rules for one
// shard: deadline = max(exp, now) + grace; an entry goes only once now is
// after its deadline; up to two expired entries are reclaimed from the old
// end per claim, all leading expired ones when full; a live entry is never
// evicted.
type model struct {
	capacity int
	grace    time.Duration
	entries  []modelEntry
}

func (m *model) find(k int) int {
	for i, e := range m.entries {
		if e.key == k {
			return i
		}
	}
	return -1
}

func (m *model) reclaim(now time.Time, limit int) {
	for i := 0; i < limit && len(m.entries) > 0 && now.After(m.entries[0].deadline); i++ {
		m.entries = m.entries[1:]
	}
}

func (m *model) claim(k int, now, exp time.Time) (bool, error) {
	deadline := exp
	if deadline.Before(now) {
		deadline = now
	}
	deadline = deadline.Add(m.grace)
	if i := m.find(k); i >= 0 {
		if !now.After(m.entries[i].deadline) {
			return false, nil
		}
		m.entries = append(m.entries[:i], m.entries[i+1:]...)
	}
	m.reclaim(now, 2)
	if len(m.entries) >= m.capacity {
		m.reclaim(now, len(m.entries))
		if len(m.entries) >= m.capacity {
			return false, replaycache.ErrFull
		}
	}
	m.entries = append(m.entries, modelEntry{key: k, deadline: deadline})
	return true, nil
}

// FuzzLRU runs a sequence of claims and clock steps (forwards and backwards)
// against one shard and compares every result with the model. It also checks
// the safety property directly: a key is fresh again only if the clock has,
// at some point since its last fresh claim, read after that claim's deadline.
//
// Each op is 3 bytes: key index (mod 6), expiry offset from now in seconds
// (signed), clock step in seconds (signed).
func FuzzLRU(f *testing.F) {
	f.Add([]byte{0, 10, 0, 0, 10, 0})
	f.Add([]byte{0, 10, 0, 1, 10, 0, 2, 10, 0, 3, 10, 0, 4, 10, 0, 0, 10, 50, 4, 10, 0})
	f.Add([]byte{0, 0xf6, 0, 0, 0, 10, 0, 0, 0xf0})
	f.Add([]byte{0, 1, 30, 1, 100, 0, 2, 1, 0, 3, 1, 0, 4, 1, 20, 5, 1, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		// Longer sequences add no new states for 6 keys and capacity 4,
		// and slow down minimization.
		if len(ops) > 3*256 {
			ops = ops[:3*256]
		}
		const grace = 5 * time.Second
		clk := newFakeClock()
		c, err := replaycache.NewLRU(replaycache.Config{Capacity: 4, Shards: 1, Grace: grace, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		m := &model{capacity: 4, grace: grace}
		type claimed struct {
			deadline time.Time
			passed   bool // the clock has read after deadline since the claim
		}
		last := map[int]*claimed{}
		for i := 0; i+2 < len(ops); i += 3 {
			k := int(ops[i]) % 6
			now := clk.Now()
			exp := now.Add(time.Duration(int8(ops[i+1])) * time.Second)
			fresh, err := c.CheckAndStore(context.Background(), key("fuzz", k), exp)
			wantFresh, wantErr := m.claim(k, now, exp)
			if fresh != wantFresh || !errors.Is(err, wantErr) || (err == nil) != (wantErr == nil) {
				t.Fatalf("op %d key %d: got %v, %v; model %v, %v", i/3, k, fresh, err, wantFresh, wantErr)
			}
			if fresh {
				if p := last[k]; p != nil && !p.passed {
					t.Fatalf("op %d: key %d fresh again before its deadline %v passed", i/3, k, p.deadline)
				}
				d := exp
				if d.Before(now) {
					d = now
				}
				last[k] = &claimed{deadline: d.Add(grace)}
			}
			if got := c.Len(); got != len(m.entries) || got > 4 {
				t.Fatalf("op %d: Len = %d, model %d (capacity 4)", i/3, got, len(m.entries))
			}
			clk.Advance(time.Duration(int8(ops[i+2])) * time.Second)
			for _, p := range last {
				if clk.Now().After(p.deadline) {
					p.passed = true
				}
			}
		}
	})
}
