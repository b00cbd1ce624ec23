package fallback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Revocation is one revoked certificate: its serial number and when it was
// revoked.
type Revocation struct {
	Serial    *big.Int
	RevokedAt time.Time
}

// RevocationStore holds the CA's revoked serial numbers. Implementations
// must be safe for concurrent use. Revoking a serial that is already
// revoked succeeds and keeps the earlier time.
type RevocationStore interface {
	// Revoke records serial as revoked at the given time.
	Revoke(ctx context.Context, serial *big.Int, at time.Time) error
	// List returns every revocation, ordered by serial number. An error
	// means the list is unknown; a CA then publishes no CRL (fail closed).
	List(ctx context.Context) ([]Revocation, error)
}

var (
	_ RevocationStore = (*MemoryRevocations)(nil)
	_ RevocationStore = (*FileRevocations)(nil)
)

// maxSerialBytes is RFC 5280 §4.1.2.2's bound on serial numbers.
const maxSerialBytes = 20

func checkSerial(serial *big.Int) error {
	if serial == nil || serial.Sign() <= 0 || len(serial.Bytes()) > maxSerialBytes {
		return errors.New("fallback: serial number must be positive and at most 20 octets")
	}
	return nil
}

// MemoryRevocations is a RevocationStore in memory, for one process. The
// zero value is ready to use; it is safe for concurrent use.
type MemoryRevocations struct {
	mu sync.Mutex
	m  map[string]Revocation
}

// Revoke implements RevocationStore.
func (s *MemoryRevocations) Revoke(_ context.Context, serial *big.Int, at time.Time) error {
	if err := checkSerial(serial); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]Revocation{}
	}
	k := string(serial.Bytes())
	if old, ok := s.m[k]; ok && !at.Before(old.RevokedAt) {
		return nil
	}
	s.m[k] = Revocation{Serial: new(big.Int).Set(serial), RevokedAt: at.UTC()}
	return nil
}

// List implements RevocationStore.
func (s *MemoryRevocations) List(context.Context) ([]Revocation, error) {
	s.mu.Lock()
	out := make([]Revocation, 0, len(s.m))
	for _, r := range s.m {
		out = append(out, Revocation{Serial: new(big.Int).Set(r.Serial), RevokedAt: r.RevokedAt})
	}
	s.mu.Unlock()
	sortRevocations(out)
	return out, nil
}

func sortRevocations(rs []Revocation) {
	slices.SortFunc(rs, func(a, b Revocation) int { return a.Serial.Cmp(b.Serial) })
}

// FileRevocations is a RevocationStore in a JSON file at Path, so that
// the command line ("ca revoke") and a running issuer share one list. The
// file is replaced atomically (written to a temporary file in the same
// directory with mode 0600, synced, renamed), so readers never see a
// partial list; a lock file beside it (Path + ".lock", created
// exclusively) serializes writers across processes. A lock older than
// FileLockStale is taken to be left by a crashed writer and removed.
// A missing file is an empty list.
//
// Set Path before first use. FileRevocations is safe for concurrent use.
type FileRevocations struct {
	// Path is the file's name. Required.
	Path string
}

// FileLockStale is the age after which a FileRevocations lock file is
// taken to be abandoned.
const FileLockStale = 30 * time.Second

// revocationFile is the on-disk form: serials as lower-case hexadecimal.
type revocationFile struct {
	Revoked []revocationEntry `json:"revoked"`
}

type revocationEntry struct {
	Serial    string    `json:"serial"`
	RevokedAt time.Time `json:"revoked_at"`
}

// maxRevocationFile caps the file read, against a corrupt or hostile file.
const maxRevocationFile = 64 << 20

func (s *FileRevocations) read() ([]Revocation, error) {
	if s.Path == "" {
		return nil, errors.New("fallback: FileRevocations.Path is empty")
	}
	f, err := os.Open(s.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fallback: revocations: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("fallback: revocations: %w", err)
	}
	if st.Size() > maxRevocationFile {
		return nil, errors.New("fallback: revocations file too large")
	}
	var rf revocationFile
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rf); err != nil {
		return nil, fmt.Errorf("fallback: revocations file: %w", err)
	}
	out := make([]Revocation, 0, len(rf.Revoked))
	for _, e := range rf.Revoked {
		n, ok := new(big.Int).SetString(e.Serial, 16)
		if !ok || checkSerial(n) != nil {
			return nil, errors.New("fallback: revocations file: invalid serial")
		}
		out = append(out, Revocation{Serial: n, RevokedAt: e.RevokedAt.UTC()})
	}
	sortRevocations(out)
	return out, nil
}

// List implements RevocationStore.
func (s *FileRevocations) List(context.Context) ([]Revocation, error) { return s.read() }

// Revoke implements RevocationStore. It waits for the lock until ctx ends.
func (s *FileRevocations) Revoke(ctx context.Context, serial *big.Int, at time.Time) error {
	if err := checkSerial(serial); err != nil {
		return err
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	list, err := s.read()
	if err != nil {
		return err
	}
	i, found := slices.BinarySearchFunc(list, serial, func(r Revocation, t *big.Int) int { return r.Serial.Cmp(t) })
	if found {
		if !at.Before(list[i].RevokedAt) {
			return nil
		}
		list[i].RevokedAt = at.UTC()
	} else {
		list = slices.Insert(list, i, Revocation{Serial: new(big.Int).Set(serial), RevokedAt: at.UTC()})
	}
	return s.write(list)
}

func (s *FileRevocations) write(list []Revocation) error {
	rf := revocationFile{Revoked: make([]revocationEntry, len(list))}
	for i, r := range list {
		rf.Revoked[i] = revocationEntry{Serial: r.Serial.Text(16), RevokedAt: r.RevokedAt}
	}
	data, err := json.MarshalIndent(rf, "", "  ")
	if err != nil {
		return fmt.Errorf("fallback: revocations: %w", err)
	}
	data = append(data, '\n')
	tmp, err := os.CreateTemp(filepath.Dir(s.Path), "."+filepath.Base(s.Path)+".*")
	if err != nil {
		return fmt.Errorf("fallback: revocations: %w", err)
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("fallback: revocations: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("fallback: revocations: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("fallback: revocations: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("fallback: revocations: %w", err)
	}
	if err := os.Rename(name, s.Path); err != nil {
		return fmt.Errorf("fallback: revocations: %w", err)
	}
	ok = true
	return nil
}

// lock takes the writer lock file, polling until ctx ends.
func (s *FileRevocations) lock(ctx context.Context) (func(), error) {
	if s.Path == "" {
		return nil, errors.New("fallback: FileRevocations.Path is empty")
	}
	name := s.Path + ".lock"
	for {
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(name) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("fallback: revocations lock: %w", err)
		}
		if st, err := os.Stat(name); err == nil && time.Since(st.ModTime()) > FileLockStale {
			// Remove the stale lock only if it is still the file judged
			// stale, not a new lock another writer took meanwhile.
			if again, err := os.Stat(name); err == nil && os.SameFile(st, again) && again.ModTime().Equal(st.ModTime()) {
				os.Remove(name)
			}
			continue
		}
		t := time.NewTimer(5 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("fallback: revocations lock: %w", ctx.Err())
		case <-t.C:
		}
	}
}
