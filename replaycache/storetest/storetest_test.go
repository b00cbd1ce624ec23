package storetest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/replaycache/storetest"
)

// mapStore is a small in-memory Store with switchable faults, to show that
// each contract check catches the fault it is for.
type mapStore struct {
	mu        sync.Mutex
	keys      map[[32]byte]time.Time
	forget    bool          // every claim is fresh
	racy      bool          // check and insert under separate locks
	keep      time.Duration // how long past exp a key is kept (negative: less than until exp)
	forever   bool          // keys never expire
	ignoreCtx bool          // claims with a done context proceed
	failOpen  bool          // errors are reported as fresh claims
}

func (m *mapStore) CheckAndStore(ctx context.Context, key [32]byte, exp time.Time) (bool, error) {
	if err := ctx.Err(); err != nil && !m.ignoreCtx {
		return false, err
	}
	if m.failOpen {
		return true, errors.New("backend down")
	}
	if m.forget {
		return true, nil
	}
	now := time.Now()
	m.mu.Lock()
	until, ok := m.keys[key]
	live := ok && (m.forever || !now.After(until))
	if m.racy {
		m.mu.Unlock()
		time.Sleep(time.Millisecond)
		m.mu.Lock()
	}
	defer m.mu.Unlock()
	if live {
		return false, nil
	}
	m.keys[key] = exp.Add(m.keep)
	return true, nil
}

// faults are the broken stores, by name, with the check that must catch
// each one.
var faults = map[string]struct {
	store func() *mapStore
	check string
}{
	"forgets":        {func() *mapStore { return &mapStore{forget: true} }, "fresh-then-replay"},
	"racy":           {func() *mapStore { return &mapStore{racy: true} }, "atomic"},
	"expires-early":  {func() *mapStore { return &mapStore{keep: -400 * time.Millisecond} }, "kept-until-exp"},
	"never-expires":  {func() *mapStore { return &mapStore{forever: true} }, "expiry"},
	"ignores-ctx":    {func() *mapStore { return &mapStore{ignoreCtx: true} }, "context-done"},
	"fails-open":     {func() *mapStore { return &mapStore{} }, "fail-closed"},
	"fresh-on-error": {func() *mapStore { return &mapStore{} }, "fail-closed"},
}

const faultEnv = "STORETEST_FAULT"

// TestFaultyStore runs the checks against the faulty store named by
// STORETEST_FAULT; it is a child process of TestChecksCatchFaults and is
// skipped otherwise.
func TestFaultyStore(t *testing.T) {
	name := os.Getenv(faultEnv)
	if name == "" {
		t.Skip("child process of TestChecksCatchFaults only")
	}
	f := faults[name]
	cfg := storetest.Config{
		New: func(*testing.T) replaycache.Store {
			s := f.store()
			s.keys = map[[32]byte]time.Time{}
			return s
		},
		Retention: 50 * time.Millisecond,
	}
	switch name {
	case "fails-open":
		cfg.NewUnavailable = func(*testing.T) replaycache.Store { return &mapStore{keys: map[[32]byte]time.Time{}} }
	case "fresh-on-error":
		cfg.NewUnavailable = func(*testing.T) replaycache.Store { return &mapStore{failOpen: true} }
	}
	storetest.Run(t, cfg)
}

// TestChecksCatchFaults runs each faulty store in a child test process and
// requires it to fail, in the check meant to catch it.
func TestChecksCatchFaults(t *testing.T) {
	t.Parallel()
	if os.Getenv(faultEnv) != "" {
		t.Skip("in a child process")
	}
	for name, f := range faults {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestFaultyStore$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), faultEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the checks passed a store that %s:\n%s", name, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestFaultyStore/"+f.check) {
				t.Fatalf("a store that %s did not fail the %s check:\n%s", name, f.check, out)
			}
		})
	}
}

// TestCorrectStorePasses runs the checks against the fault-free mapStore.
func TestCorrectStorePasses(t *testing.T) {
	t.Parallel()
	storetest.Run(t, storetest.Config{
		New:       func(*testing.T) replaycache.Store { return &mapStore{keys: map[[32]byte]time.Time{}} },
		Retention: 50 * time.Millisecond,
	})
}
