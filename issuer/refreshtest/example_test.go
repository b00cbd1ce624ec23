package refreshtest_test

import (
	"testing"

	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/issuer/refreshtest"
)

// A store author runs the contract checks from a test of their own.
func ExampleRun() {
	_ = func(t *testing.T) {
		refreshtest.Run(t, refreshtest.Config{
			New: func(*testing.T) issuer.RefreshStore { return issuer.NewMemoryRefreshStore(nil) },
		})
	}
}
