//go:build linux || darwin || freebsd || openbsd || netbsd

package keyfile

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
)

func TestReadPrivate(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(write("target", []byte("linked"), 0o600), link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		want    []byte
		wantErr error // nil: success; errAny: any error
	}{
		{"owner only", write("ok", []byte("secret\n"), 0o600), []byte("secret\n"), nil},
		{"owner read-only", write("ro", []byte("secret"), 0o400), []byte("secret"), nil},
		{"symbolic link to a private file", link, []byte("linked"), nil},
		{"group readable", write("g", []byte("secret"), 0o640), nil, ErrExposed},
		{"world readable", write("w", []byte("secret"), 0o604), nil, ErrExposed},
		{"group writable", write("gw", []byte("secret"), 0o620), nil, ErrExposed},
		{"missing", filepath.Join(dir, "missing"), nil, fs.ErrNotExist},
		{"directory", dir, nil, errAny},
		{"fifo", fifo, nil, errAny},
		{"too large", write("big", bytes.Repeat([]byte("a"), maxPrivateFile+1), 0o600), nil, errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ReadPrivate(tt.path)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("error %v", err)
			case tt.wantErr == nil && !bytes.Equal(got, tt.want):
				t.Fatalf("read %q, want %q", got, tt.want)
			case tt.wantErr == errAny && err == nil, tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			case err != nil && bytes.Contains([]byte(err.Error()), []byte("secret")):
				t.Fatalf("error echoes the content: %v", err)
			case tt.wantErr != nil && got != nil:
				t.Fatalf("content returned with error %v", err)
			}
		})
	}
}

// errAny stands for "some error" in test tables.
var errAny = errors.New("any error")

func TestLoadOrCreate(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	t.Run("created once, then reused", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "state", "sub", "key.jwk")
		k1, created, err := LoadOrCreate(path, "ES256", nil)
		if err != nil || !created {
			t.Fatalf("first call: created %v, error %v", created, err)
		}
		for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
			st, err := os.Stat(p)
			if err != nil || st.Mode().Perm() != want {
				t.Fatalf("%s: mode %v (%v), want %#o", p, st.Mode().Perm(), err, want)
			}
		}
		k2, created, err := LoadOrCreate(path, "ES256", nil)
		if err != nil || created {
			t.Fatalf("second call: created %v, error %v", created, err)
		}
		if !k1.Signer.Public().(*ecdsa.PublicKey).Equal(k2.Signer.Public()) || k2.Algorithm != "ES256" || k2.KeyID == "" || k1.KeyID != k2.KeyID {
			t.Fatalf("second call returned another key: %+v %+v", k1, k2)
		}
		entries, err := os.ReadDir(filepath.Dir(path))
		if err != nil || len(entries) != 1 {
			t.Fatalf("directory holds %v (%v), want only the key", entries, err)
		}
	})
	t.Run("an exposed file is refused and kept", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "key.jwk")
		if _, _, err := LoadOrCreate(path, "ES256", nil); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(path)
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := LoadOrCreate(path, "ES256", nil); !errors.Is(err, ErrExposed) {
			t.Fatalf("error %v, want ErrExposed", err)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Fatal("the exposed key file was replaced")
		}
	})
	t.Run("an unreadable file is not replaced", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "key.jwk")
		if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := LoadOrCreate(path, "ES256", nil); err == nil {
			t.Fatal("a file that is no key was accepted")
		}
		if data, _ := os.ReadFile(path); string(data) != "not a key" {
			t.Fatal("the file was replaced")
		}
	})
	t.Run("concurrent first starts share one key", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "key.jwk")
		const n = 8
		keys := make([]*Key, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { keys[i], _, errs[i] = LoadOrCreate(path, "ES256", nil) })
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("call %d: %v", i, errs[i])
			}
			if !keys[i].Signer.Public().(*ecdsa.PublicKey).Equal(keys[0].Signer.Public()) {
				t.Fatalf("call %d got another key", i)
			}
		}
	})
}
