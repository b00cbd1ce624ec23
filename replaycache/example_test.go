package replaycache_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/senderbound/senderbound/replaycache"
)

// replayKey derives a replay key from the proof key's thumbprint and the jti,
// never from the proof's bytes.
func replayKey(thumbprint, jti string) [32]byte {
	h := sha256.New()
	h.Write([]byte(thumbprint))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func ExampleLRU() {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cache, err := replaycache.NewLRU(replaycache.Config{
		Capacity: 1 << 16,
		Now:      func() time.Time { return now },
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	exp := now.Add(5 * time.Minute) // end of the proof's acceptance window

	k := replayKey("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", "e1j3V_bKic8-LAEB")
	for i := 0; i < 2; i++ {
		fresh, err := cache.CheckAndStore(ctx, k, exp)
		switch {
		case err != nil:
			fmt.Println("store error: reject")
		case !fresh:
			fmt.Println("replay: reject")
		default:
			fmt.Println("fresh: accept")
		}
	}
	// The same jti under another key is another client's: not a replay.
	other := replayKey("another-thumbprint", "e1j3V_bKic8-LAEB")
	fresh, _ := cache.CheckAndStore(ctx, other, exp)
	fmt.Println("other key fresh:", fresh)
	fmt.Printf("%+v\n", cache.Stats())
	// Output:
	// fresh: accept
	// replay: reject
	// other key fresh: true
	// {Claims:2 Replays:1 Full:0 Expired:0 Entries:2}
}

func ExampleErrFull() {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cache, err := replaycache.NewLRU(replaycache.Config{
		Capacity: 1,
		Now:      func() time.Time { return now },
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	exp := now.Add(time.Minute)
	_, err = cache.CheckAndStore(ctx, replayKey("k", "1"), exp)
	fmt.Println(err)
	// The live entry is not evicted; the new claim is refused instead.
	fresh, err := cache.CheckAndStore(ctx, replayKey("k", "2"), exp)
	fmt.Println(fresh, errors.Is(err, replaycache.ErrFull))
	// Output:
	// <nil>
	// false true
}
