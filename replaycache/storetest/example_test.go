package storetest_test

import (
	"testing"
	"time"

	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/replaycache/storetest"
)

// A store author runs the contract checks from a test of their own.
func ExampleRun() {
	_ = func(t *testing.T) {
		storetest.Run(t, storetest.Config{
			New: func(t *testing.T) replaycache.Store {
				s, err := replaycache.NewLRU(replaycache.Config{Grace: 50 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				return s
			},
			Retention: 50 * time.Millisecond,
		})
	}
}
