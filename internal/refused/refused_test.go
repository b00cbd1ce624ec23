package refused_test

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/senderbound/senderbound/internal/refused"
)

func TestAddrRefusesAndIsReserved(t *testing.T) {
	t.Parallel()
	a := refused.Addr(t)
	for range 3 {
		c, err := net.DialTimeout("tcp", a, 5*time.Second)
		if err == nil {
			c.Close()
			t.Fatalf("a connection to %s was accepted", a)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %s: %v, want connection refused", a, err)
		}
	}
	// No listener can take the port while the test runs.
	if ln, err := net.Listen("tcp", a); err == nil {
		ln.Close()
		t.Fatalf("a listener took the reserved port %s", a)
	}
}
