package replaycache_test

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/senderbound/senderbound/replaycache"
)

type quotaClock struct{ ns atomic.Int64 }

func (c *quotaClock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *quotaClock) Add(d time.Duration) { c.ns.Add(int64(d)) }

func TestNewQuotaConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     replaycache.QuotaConfig
		wantErr bool
	}{
		{name: "zero value", cfg: replaycache.QuotaConfig{}},
		{name: "negative limit", cfg: replaycache.QuotaConfig{Limit: -1}, wantErr: true},
		{name: "negative window", cfg: replaycache.QuotaConfig{Window: -time.Second}, wantErr: true},
		{name: "negative owners", cfg: replaycache.QuotaConfig{Owners: -1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q, err := replaycache.NewQuota(tt.cfg)
			if (err != nil) != tt.wantErr || (err == nil) != (q != nil) {
				t.Fatalf("NewQuota = %v, %v; want error %v", q, err, tt.wantErr)
			}
		})
	}
}

// TestQuotaLimitAndWindow checks that an owner gets Limit claims per
// Window, that refused claims are not counted, that owners are independent
// and that the count restarts when the window has passed.
func TestQuotaLimitAndWindow(t *testing.T) {
	t.Parallel()
	clock := &quotaClock{}
	clock.Add(time.Hour)
	q, err := replaycache.NewQuota(replaycache.QuotaConfig{Limit: 3, Window: time.Minute, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		advance time.Duration
		owner   string
		want    bool
	}{
		{name: "a 1", owner: "a", want: true},
		{name: "a 2", owner: "a", want: true},
		{name: "b 1", owner: "b", want: true},
		{name: "a 3", advance: 30 * time.Second, owner: "a", want: true},
		{name: "ADV-105/a over quota", owner: "a", want: false},
		{name: "ADV-105/a still over quota", advance: 29 * time.Second, owner: "a", want: false},
		{name: "b unaffected", owner: "b", want: true},
		{name: "a after its window", advance: time.Second, owner: "a", want: true},
		{name: "a 2 in the new window", owner: "a", want: true},
		{name: "a 3 in the new window", owner: "a", want: true},
		{name: "a over quota again", owner: "a", want: false},
	}
	for _, st := range steps {
		clock.Add(st.advance)
		if got := q.Allow(st.owner); got != st.want {
			t.Fatalf("%s: Allow = %v, want %v", st.name, got, st.want)
		}
	}
}

// TestQuotaBoundedOwners checks that a flood of distinct owners does not
// grow the Quota beyond Owners (the least recently active are forgotten)
// and that an owner claiming every other time stays tracked and bounded
// (4 owners per part of the table; at most 1 other claims between two of
// its claims).
func TestQuotaBoundedOwners(t *testing.T) {
	t.Parallel()
	q, err := replaycache.NewQuota(replaycache.QuotaConfig{Limit: 2, Owners: 64})
	if err != nil {
		t.Fatal(err)
	}
	q.Allow("heavy")
	q.Allow("heavy")
	for i := 0; i < 10_000; i++ {
		q.Allow("owner-" + strconv.Itoa(i))
		if i%2 == 0 && q.Allow("heavy") {
			t.Fatalf("ADV-105: the heavy owner got a claim past its quota after %d other owners", i)
		}
	}
}

// TestQuotaConcurrent checks that concurrent claims of one owner never
// exceed the limit.
func TestQuotaConcurrent(t *testing.T) {
	t.Parallel()
	const limit = 100
	q, err := replaycache.NewQuota(replaycache.QuotaConfig{Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg      sync.WaitGroup
		allowed atomic.Int64
	)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if q.Allow("k") {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := allowed.Load(); n != limit {
		t.Fatalf("allowed %d concurrent claims, want %d", n, limit)
	}
}
