package fallback

import (
	"context"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestRevocationStores(t *testing.T) {
	t.Parallel()
	stores := map[string]func(t *testing.T) RevocationStore{
		"memory": func(*testing.T) RevocationStore { return &MemoryRevocations{} },
		"file": func(t *testing.T) RevocationStore {
			return &FileRevocations{Path: filepath.Join(t.TempDir(), "revoked.json")}
		},
	}
	for name, mk := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := mk(t)
			if l, err := s.List(ctx); err != nil || len(l) != 0 {
				t.Fatalf("new store: %v, %v", l, err)
			}
			t1, t2 := testNow, testNow.Add(time.Hour)
			for _, r := range []struct {
				serial int64
				at     time.Time
			}{{30, t2}, {7, t1}, {30, t1}, {7, t2}} {
				if err := s.Revoke(ctx, big.NewInt(r.serial), r.at); err != nil {
					t.Fatal(err)
				}
			}
			l, err := s.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(l) != 2 || l[0].Serial.Int64() != 7 || l[1].Serial.Int64() != 30 {
				t.Fatalf("list %v", l)
			}
			for _, r := range l {
				if !r.RevokedAt.Equal(t1) {
					t.Fatalf("serial %v revoked at %v, want the earlier time %v", r.Serial, r.RevokedAt, t1)
				}
			}
			for _, bad := range []*big.Int{nil, big.NewInt(0), big.NewInt(-5), new(big.Int).Lsh(big.NewInt(1), 160)} {
				if err := s.Revoke(ctx, bad, t1); err == nil {
					t.Fatalf("serial %v accepted", bad)
				}
			}
		})
	}
}

// TestFileRevocationsShared runs two stores on one file, as the command
// line and a running issuer do, revoking concurrently: no revocation is
// lost, and the file is private.
func TestFileRevocationsShared(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "revoked.json")
	a, b := &FileRevocations{Path: path}, &FileRevocations{Path: path}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 20 {
		wg.Add(2)
		go func() { defer wg.Done(); errs <- a.Revoke(ctx, big.NewInt(int64(1+2*i)), testNow) }()
		go func() { defer wg.Done(); errs <- b.Revoke(ctx, big.NewInt(int64(2+2*i)), testNow) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	l, err := a.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 40 {
		t.Fatalf("%d revocations listed, want 40", len(l))
	}
	for i, r := range l {
		if r.Serial.Int64() != int64(i+1) {
			t.Fatalf("entry %d is serial %v", i, r.Serial)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v", st.Mode().Perm())
	}
	if _, err := os.Stat(path + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("lock file left behind")
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want the list alone", len(ents))
	}
}

func TestFileRevocationsLock(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "revoked.json")
	s := &FileRevocations{Path: path}
	if err := os.WriteFile(path+".lock", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Revoke(ctx, big.NewInt(1), testNow); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with the lock held: %v", err)
	}
	// A lock left by a crashed writer is taken over once stale.
	old := time.Now().Add(-2 * FileLockStale)
	if err := os.Chtimes(path+".lock", old, old); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(context.Background(), big.NewInt(1), testNow); err != nil {
		t.Fatal(err)
	}
}

func TestFileRevocationsCorrupt(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"not JSON":       "revoked",
		"unknown member": `{"revoked":[],"extra":1}`,
		"bad serial":     `{"revoked":[{"serial":"xyz","revoked_at":"2026-01-01T00:00:00Z"}]}`,
		"zero serial":    `{"revoked":[{"serial":"0","revoked_at":"2026-01-01T00:00:00Z"}]}`,
		"negative":       `{"revoked":[{"serial":"-1","revoked_at":"2026-01-01T00:00:00Z"}]}`,
	}
	w := newWorld(t, "P256")
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "revoked.json")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			s := &FileRevocations{Path: path}
			if _, err := s.List(context.Background()); err == nil {
				t.Fatal("corrupt file listed")
			}
			if err := s.Revoke(context.Background(), big.NewInt(1), testNow); err == nil {
				t.Fatal("revoked into a corrupt file")
			}
			ca, err := NewCA(CAConfig{Certificate: w.root.Cert, Signer: w.root.Key, Revocations: s, Now: fixedClock(testNow)})
			if err != nil {
				t.Fatal(err)
			}
			if der, err := ca.CRL(context.Background(), testNow); err == nil || der != nil {
				t.Fatal("a CRL was signed from a corrupt revocation list")
			}
		})
	}
}
