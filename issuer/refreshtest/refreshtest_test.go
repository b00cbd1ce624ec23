package refreshtest_test

import (
	"testing"

	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/issuer/refreshtest"
)

// TestMemoryRefreshStore runs the contract against the in-memory store.
func TestMemoryRefreshStore(t *testing.T) {
	t.Parallel()
	refreshtest.Run(t, refreshtest.Config{
		New: func(*testing.T) issuer.RefreshStore { return issuer.NewMemoryRefreshStore(nil) },
	})
}
