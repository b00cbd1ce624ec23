package dpop

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// memStore is a minimal map-based ReplayStore for tests and benchmarks.
type memStore struct {
	mu   sync.Mutex
	m    map[[32]byte]time.Time
	fail error
}

func newMemStore() *memStore { return &memStore{m: make(map[[32]byte]time.Time)} }

func (s *memStore) CheckAndStore(_ context.Context, key [32]byte, exp time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return false, s.fail
	}
	if _, ok := s.m[key]; ok {
		return false, nil
	}
	s.m[key] = exp
	return true, nil
}

const (
	kat5Proof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
	kat3JKT   = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
)

func fixedClock(unix int64) func() time.Time {
	return func() time.Time { return time.Unix(unix, 0) }
}

func TestKAT5(t *testing.T) {
	t.Parallel()
	v, err := NewVerifier(Config{Algorithms: []string{"ES256"}, ReplayStore: newMemStore(), Now: fixedClock(1562262616)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(context.Background(), kat5Proof, Expect{Method: "POST", URL: "https://server.example.com/token"})
	if err != nil {
		t.Fatalf("KAT-5: %v", err)
	}
	if p.JKT != kat3JKT {
		t.Fatalf("KAT-3 jkt = %s", p.JKT)
	}
	_, err = v.Verify(context.Background(), kat5Proof, Expect{Method: "POST", URL: "https://server.example.com/token"})
	if !errors.Is(err, ErrReplay) || !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("replay: %v", err)
	}
}
