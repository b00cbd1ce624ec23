// Package refreshtest checks that an implementation of
// [github.com/senderbound/senderbound/issuer.RefreshStore] keeps the
// RefreshStore contract, in the manner of replaycache/storetest: a store
// author calls [Run] from a test with a constructor for fresh stores, and
// Run reports every breach as a test failure.
//
// The checks, each a subtest:
//
//   - round-trip: Get returns what Put stored, every field, and ids are
//     independent (Claims compared by their JSON encoding); the caller's later changes to the record it put, or to
//     the record Get returned, do not reach the store;
//   - access-token: the record of an opaque access token (IssuedAt and ID
//     set, as issuer.Config.AccessTokens stores it) round-trips, and a
//     refresh token's zero IssuedAt and empty ID come back zero and empty;
//   - unknown: Get and Take of an unknown id wrap issuer.ErrTokenNotFound;
//   - take-once: Take returns the record and removes it, so a later Get or
//     Take wraps issuer.ErrTokenNotFound;
//   - expiry: a record whose ExpiresAt has passed (by the real clock) is
//     not returned by Get or Take;
//   - atomic: among concurrent Takes of one id exactly one gets the
//     record, for one id and for many ids at once;
//   - context-done: with a context already done, Get and Take never
//     return a record;
//   - family-reuse: Take of a record with a Family leaves a used marker,
//     which Get returns with Used set (ClientID, Subject, Family and
//     ExpiresAt kept) and Take refuses with issuer.ErrTokenNotFound;
//     Revoke refuses every live member of the family to Get and Take,
//     keeps the markers, and leaves another family untouched;
//   - family-race: among concurrent Takes of one family member exactly
//     one gets the record, every other wraps issuer.ErrTokenNotFound (the
//     loser is an invalid token, not a reuse), and the marker remains;
//   - family-expiry: a used marker goes at its record's ExpiresAt, and a
//     revocation at its end (by the real clock);
//   - fail-closed (when Config.NewUnavailable is set): a store that cannot
//     answer returns an error from every call, never a record and never
//     issuer.ErrTokenNotFound (which would read as "no such token" rather
//     than "refuse the request").
//
// The expiry checks wait on the real clock for about two seconds.
//
// # Example
//
//	func TestContract(t *testing.T) {
//		refreshtest.Run(t, refreshtest.Config{
//			New: func(t *testing.T) issuer.RefreshStore {
//				return issuer.NewMemoryRefreshStore(nil)
//			},
//		})
//	}
package refreshtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/senderbound/senderbound/issuer"
)

// Config describes the store under test to [Run].
type Config struct {
	// New returns a new, empty store that uses the real clock. Stores from
	// separate calls must not share records. Required. It is called from
	// the subtest's goroutine and may call t.Fatal and t.Cleanup.
	New func(t *testing.T) issuer.RefreshStore

	// NewUnavailable, when set, returns a store that cannot answer (its
	// backend stopped). Nil skips the fail-closed check.
	NewUnavailable func(t *testing.T) issuer.RefreshStore

	// Concurrency is the number of goroutines racing in the atomic check.
	// Zero means 16.
	Concurrency int
}

// Run runs the contract checks as subtests of t.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	if cfg.New == nil {
		t.Fatal("refreshtest: Config.New is required")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	t.Run("round-trip", func(t *testing.T) { t.Parallel(); roundTrip(t, cfg) })
	t.Run("access-token", func(t *testing.T) { t.Parallel(); accessToken(t, cfg) })
	t.Run("unknown", func(t *testing.T) { t.Parallel(); unknown(t, cfg) })
	t.Run("take-once", func(t *testing.T) { t.Parallel(); takeOnce(t, cfg) })
	t.Run("expiry", func(t *testing.T) { t.Parallel(); expiry(t, cfg) })
	t.Run("atomic", func(t *testing.T) { t.Parallel(); atomicTake(t, cfg) })
	t.Run("context-done", func(t *testing.T) { t.Parallel(); contextDone(t, cfg) })
	t.Run("family-reuse", func(t *testing.T) { t.Parallel(); familyReuse(t, cfg) })
	t.Run("family-race", func(t *testing.T) { t.Parallel(); familyRace(t, cfg) })
	t.Run("family-expiry", func(t *testing.T) { t.Parallel(); familyExpiry(t, cfg) })
	if cfg.NewUnavailable != nil {
		t.Run("fail-closed", func(t *testing.T) { t.Parallel(); failClosed(t, cfg) })
	}
}

// newID returns a random id, as the SHA-256 of a random token would be.
func newID(t *testing.T) [32]byte {
	t.Helper()
	var id [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		t.Fatal(err)
	}
	return id
}

// sample returns a record with every field set, expiring in an hour.
func sample(sub string) issuer.RefreshRecord {
	return issuer.RefreshRecord{
		ClientID: "client-" + sub,
		Subject:  sub,
		Scope:    "read write",
		Audience: []string{"https://rs1.example.test", "https://rs2.example.test"},
		Claims:   map[string]any{"tenant": "t-" + sub, "n": float64(7), "list": []any{"a", "b"}},
		Binding:  issuer.Binding{JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
		// Whole seconds in UTC: stores may keep only that precision.
		ExpiresAt: time.Now().Add(time.Hour).Truncate(time.Second).UTC(),
	}
}

func put(t *testing.T, s issuer.RefreshStore, id [32]byte, rec issuer.RefreshRecord) {
	t.Helper()
	if err := s.Put(context.Background(), id, rec); err != nil {
		t.Fatalf("Put: %v", err)
	}
}

// sameRecord compares two records, ExpiresAt as an instant and Claims by
// their JSON encoding (the form they take in a token), so that a store may
// return a number as float64 or json.Number.
func sameRecord(a, b issuer.RefreshRecord) bool {
	if !a.ExpiresAt.Equal(b.ExpiresAt) || !a.IssuedAt.Equal(b.IssuedAt) || a.IssuedAt.IsZero() != b.IssuedAt.IsZero() {
		return false
	}
	ca, errA := json.Marshal(a.Claims)
	cb, errB := json.Marshal(b.Claims)
	if errA != nil || errB != nil || !bytes.Equal(ca, cb) {
		return false
	}
	a.ExpiresAt, b.ExpiresAt = time.Time{}, time.Time{}
	a.IssuedAt, b.IssuedAt = time.Time{}, time.Time{}
	a.Claims, b.Claims = nil, nil
	return reflect.DeepEqual(a, b)
}

func accessToken(t *testing.T, cfg Config) {
	s := cfg.New(t)
	ctx := context.Background()
	at, rt := newID(t), newID(t)
	a := sample("carol")
	a.IssuedAt = time.Now().Truncate(time.Second).UTC()
	a.ID = "5f1c0a6e-2b7d-4c1e-9a55-3f8e2d6b7c90"
	put(t, s, at, a)
	put(t, s, rt, sample("dave"))
	got, err := s.Get(ctx, at)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !sameRecord(*got, a) || got.ID != a.ID || !got.IssuedAt.Equal(a.IssuedAt) {
		t.Fatalf("access-token record: Get = %+v, want %+v", got, a)
	}
	got, err = s.Get(ctx, rt)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.ID != "" || !got.IssuedAt.IsZero() {
		t.Fatalf("refresh record came back with ID %q and IssuedAt %v", got.ID, got.IssuedAt)
	}
}

func roundTrip(t *testing.T, cfg Config) {
	s := cfg.New(t)
	ctx := context.Background()
	id1, id2 := newID(t), newID(t)
	r1, r2 := sample("alice"), sample("bob")
	r2.Binding = issuer.Binding{X5TS256: "A4DtL2JmUMhAsvJj5tKyn64SqzmuXbMrJa0n761y5v0"}
	r2.Claims = nil
	r2.Family = "Zm9yLXRoZS1yb3VuZC10cmlw"
	put(t, s, id1, r1)
	put(t, s, id2, r2)
	// Changes by the caller after Put must not reach the store.
	r1.Audience[0] = "changed"
	r1.Claims["tenant"] = "changed"
	want1 := sample("alice")
	for _, tc := range []struct {
		id   [32]byte
		want issuer.RefreshRecord
	}{{id1, want1}, {id2, r2}} {
		got, err := s.Get(ctx, tc.id)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if got == nil || !sameRecord(*got, tc.want) {
			t.Fatalf("Get = %+v, want %+v", got, tc.want)
		}
	}
	got, err := s.Get(ctx, id1)
	if err != nil {
		t.Fatal(err)
	}
	got.Audience[0] = "changed"
	got.Claims["tenant"] = "changed"
	again, err := s.Get(ctx, id1)
	if err != nil {
		t.Fatal(err)
	}
	if !sameRecord(*again, want1) {
		t.Fatalf("a change to Get's result reached the store: %+v", again)
	}
	// Put replaces.
	r3 := sample("carol")
	put(t, s, id1, r3)
	if got, err := s.Get(ctx, id1); err != nil || !sameRecord(*got, r3) {
		t.Fatalf("Get after a second Put = %+v, %v; want %+v", got, err, r3)
	}
}

func unknown(t *testing.T, cfg Config) {
	s := cfg.New(t)
	ctx := context.Background()
	put(t, s, newID(t), sample("alice"))
	id := newID(t)
	if rec, err := s.Get(ctx, id); rec != nil || !errors.Is(err, issuer.ErrTokenNotFound) {
		t.Fatalf("Get(unknown) = %v, %v; want ErrTokenNotFound", rec, err)
	}
	if rec, err := s.Take(ctx, id); rec != nil || !errors.Is(err, issuer.ErrTokenNotFound) {
		t.Fatalf("Take(unknown) = %v, %v; want ErrTokenNotFound", rec, err)
	}
}

func takeOnce(t *testing.T, cfg Config) {
	s := cfg.New(t)
	ctx := context.Background()
	id, other := newID(t), newID(t)
	want := sample("alice")
	put(t, s, id, want)
	put(t, s, other, sample("bob"))
	got, err := s.Take(ctx, id)
	if err != nil || got == nil || !sameRecord(*got, want) {
		t.Fatalf("Take = %+v, %v; want %+v", got, err, want)
	}
	if rec, err := s.Take(ctx, id); rec != nil || !errors.Is(err, issuer.ErrTokenNotFound) {
		t.Fatalf("second Take = %v, %v; want ErrTokenNotFound", rec, err)
	}
	if rec, err := s.Get(ctx, id); rec != nil || !errors.Is(err, issuer.ErrTokenNotFound) {
		t.Fatalf("Get after Take = %v, %v; want ErrTokenNotFound", rec, err)
	}
	if _, err := s.Get(ctx, other); err != nil {
		t.Fatalf("Take removed another id: %v", err)
	}
}

func expiry(t *testing.T, cfg Config) {
	s := cfg.New(t)
	ctx := context.Background()
	live, short, past := newID(t), newID(t), newID(t)
	put(t, s, live, sample("alice"))
	r := sample("bob")
	r.ExpiresAt = time.Now().Add(1500 * time.Millisecond)
	put(t, s, short, r)
	expired := sample("carol")
	expired.ExpiresAt = time.Now().Add(-time.Minute)
	put(t, s, past, expired)
	if rec, err := s.Get(ctx, past); rec != nil || !errors.Is(err, issuer.ErrTokenNotFound) {
		t.Fatalf("Get(expired) = %v, %v; want ErrTokenNotFound", rec, err)
	}
	if rec, err := s.Take(ctx, past); rec != nil || !errors.Is(err, issuer.ErrTokenNotFound) {
		t.Fatalf("Take(expired) = %v, %v; want ErrTokenNotFound", rec, err)
	}
	if _, err := s.Get(ctx, short); err != nil {
		t.Fatalf("Get before expiry: %v", err)
	}
	time.Sleep(time.Until(r.ExpiresAt) + 500*time.Millisecond)
	if rec, err := s.Get(ctx, short); rec != nil || !errors.Is(err, issuer.ErrTokenNotFound) {
		t.Fatalf("Get after expiry = %v, %v; want ErrTokenNotFound", rec, err)
	}
	if rec, err := s.Take(ctx, short); rec != nil || !errors.Is(err, issuer.ErrTokenNotFound) {
		t.Fatalf("Take after expiry = %v, %v; want ErrTokenNotFound", rec, err)
	}
	if _, err := s.Get(ctx, live); err != nil {
		t.Fatalf("a live record expired: %v", err)
	}
}

func atomicTake(t *testing.T, cfg Config) {
	s := cfg.New(t)
	const ids = 8
	var list [ids][32]byte
	for i := range list {
		list[i] = newID(t)
		put(t, s, list[i], sample("alice"))
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins [ids]int
	)
	for g := 0; g < cfg.Concurrency; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, id := range list {
				rec, err := s.Take(context.Background(), id)
				switch {
				case err == nil && rec != nil:
					mu.Lock()
					wins[i]++
					mu.Unlock()
				case err == nil:
					t.Errorf("Take returned neither a record nor an error")
				case rec != nil:
					t.Errorf("Take returned a record with error %v", err)
				case !errors.Is(err, issuer.ErrTokenNotFound):
					t.Errorf("Take: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	for i, n := range wins {
		if n != 1 {
			t.Errorf("id %d was taken %d times by %d concurrent Takes, want once", i, n, cfg.Concurrency)
		}
	}
}

func contextDone(t *testing.T, cfg Config) {
	s := cfg.New(t)
	id := newID(t)
	put(t, s, id, sample("alice"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// A store may still answer from memory; it must never return a record
	// together with an error, nor let a record be taken twice.
	if rec, err := s.Get(ctx, id); err != nil && rec != nil {
		t.Fatalf("Get with a done context returned a record and %v", err)
	}
	rec, err := s.Take(ctx, id)
	switch {
	case err != nil && rec != nil:
		t.Fatalf("Take with a done context returned a record and %v", err)
	case err == nil && rec == nil:
		t.Fatal("Take with a done context returned neither a record nor an error")
	}
	again, err2 := s.Take(context.Background(), id)
	if err == nil && (again != nil || !errors.Is(err2, issuer.ErrTokenNotFound)) {
		t.Fatalf("a record taken with a done context was taken again: %v, %v", again, err2)
	}
}

func failClosed(t *testing.T, cfg Config) {
	s := cfg.NewUnavailable(t)
	ctx := context.Background()
	id := newID(t)
	if err := s.Put(ctx, id, sample("alice")); err == nil {
		t.Error("Put on an unavailable store succeeded")
	}
	if err := s.Revoke(ctx, "ZmFtaWx5", time.Now().Add(time.Hour)); err == nil {
		t.Error("Revoke on an unavailable store succeeded")
	}
	for name, call := range map[string]func() (*issuer.RefreshRecord, error){
		"Get":  func() (*issuer.RefreshRecord, error) { return s.Get(ctx, id) },
		"Take": func() (*issuer.RefreshRecord, error) { return s.Take(ctx, id) },
	} {
		rec, err := call()
		if rec != nil || err == nil || errors.Is(err, issuer.ErrTokenNotFound) {
			t.Errorf("%s on an unavailable store = %v, %v; want an error other than ErrTokenNotFound", name, rec, err)
		}
	}
}

// member returns a record of family, expiring in an hour.
func member(sub, family string) issuer.RefreshRecord {
	r := sample(sub)
	r.Family = family
	return r
}

// wantNotFound fails t unless call returns no record and an error wrapping
// issuer.ErrTokenNotFound.
func wantNotFound(t *testing.T, what string, rec *issuer.RefreshRecord, err error) {
	t.Helper()
	if rec != nil || !errors.Is(err, issuer.ErrTokenNotFound) {
		t.Fatalf("%s = %+v, %v; want ErrTokenNotFound", what, rec, err)
	}
}

// wantUsed fails t unless Get of id returns the used marker of want.
func wantUsed(t *testing.T, s issuer.RefreshStore, id [32]byte, want issuer.RefreshRecord) {
	t.Helper()
	got, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get of a redeemed family member: %v", err)
	}
	if !got.Used || got.Family != want.Family || got.ClientID != want.ClientID || got.Subject != want.Subject || !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("Get of a redeemed family member = %+v, want the used marker of %+v", got, want)
	}
}

func familyReuse(t *testing.T, cfg Config) {
	s := cfg.New(t)
	ctx := context.Background()
	first, next, other := newID(t), newID(t), newID(t)
	a := member("alice", "ZmFtaWx5LWFsaWNl")
	put(t, s, first, a)
	put(t, s, other, member("bob", "ZmFtaWx5LWJvYg"))
	got, err := s.Take(ctx, first)
	if err != nil || got == nil || got.Used || !sameRecord(*got, a) {
		t.Fatalf("Take = %+v, %v; want %+v", got, err, a)
	}
	wantUsed(t, s, first, a)
	rec, err := s.Take(ctx, first)
	wantNotFound(t, "second Take", rec, err)
	// Rotation: the successor of the same family is live until revoked.
	put(t, s, next, a)
	if got, err := s.Get(ctx, next); err != nil || got.Used || !sameRecord(*got, a) {
		t.Fatalf("Get of the successor = %+v, %v; want %+v", got, err, a)
	}
	if err := s.Revoke(ctx, a.Family, a.ExpiresAt); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	rec, err = s.Get(ctx, next)
	wantNotFound(t, "Get of a member of a revoked family", rec, err)
	rec, err = s.Take(ctx, next)
	wantNotFound(t, "Take of a member of a revoked family", rec, err)
	wantUsed(t, s, first, a)
	// Another family is untouched.
	if got, err := s.Take(ctx, other); err != nil || got == nil {
		t.Fatalf("Take in another family = %v, %v", got, err)
	}
	// Revoking nothing is no error.
	if err := s.Revoke(ctx, "", a.ExpiresAt); err != nil {
		t.Fatalf("Revoke of the empty family: %v", err)
	}
}

func familyRace(t *testing.T, cfg Config) {
	s := cfg.New(t)
	id := newID(t)
	a := member("alice", "ZmFtaWx5LXJhY2U")
	put(t, s, id, a)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for g := 0; g < cfg.Concurrency; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec, err := s.Take(context.Background(), id)
			switch {
			case err == nil && rec != nil && !rec.Used:
				mu.Lock()
				wins++
				mu.Unlock()
			case rec != nil:
				t.Errorf("Take returned %+v with error %v", rec, err)
			case !errors.Is(err, issuer.ErrTokenNotFound):
				t.Errorf("losing Take: %v, want ErrTokenNotFound", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("a family member was taken %d times by %d concurrent Takes, want once", wins, cfg.Concurrency)
	}
	wantUsed(t, s, id, a)
}

func familyExpiry(t *testing.T, cfg Config) {
	s := cfg.New(t)
	ctx := context.Background()
	used, live := newID(t), newID(t)
	short := member("alice", "ZmFtaWx5LXNob3J0")
	short.ExpiresAt = time.Now().Add(1500 * time.Millisecond)
	put(t, s, used, short)
	if _, err := s.Take(ctx, used); err != nil {
		t.Fatalf("Take: %v", err)
	}
	wantUsed(t, s, used, short)
	// A revocation ends at its time: a member that outlives it (which the
	// server never makes: a revocation lasts as long as its family) is
	// live again.
	long := member("bob", "ZmFtaWx5LWxvbmc")
	put(t, s, live, long)
	if err := s.Revoke(ctx, long.Family, short.ExpiresAt); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	rec, err := s.Get(ctx, live)
	wantNotFound(t, "Get of a member of a revoked family", rec, err)
	time.Sleep(time.Until(short.ExpiresAt) + 500*time.Millisecond)
	rec, err = s.Get(ctx, used)
	wantNotFound(t, "Get of a used marker after its family expired", rec, err)
	if got, err := s.Get(ctx, live); err != nil || got == nil {
		t.Fatalf("Get after the revocation ended = %v, %v", got, err)
	}
}
