//go:build !unix

package refused

import (
	"net"
	"testing"
)

// addr falls back to a port that was listened on and closed: refused
// unless another socket takes it meanwhile.
func addr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("refused: %v", err)
	}
	a := ln.Addr().String()
	_ = ln.Close()
	return a
}
