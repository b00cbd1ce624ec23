// Package refused gives tests a loopback address where every connection
// is refused, reserved for the test's lifetime.
//
// Listening on a port and closing it is not enough: once closed, the port
// is free, and a test running in parallel (a listener, or the local end
// of an outgoing connection) may take it, so the "unreachable" target
// answers. Addr instead keeps a socket bound to the port without
// listening on it: the kernel refuses connections to it, and no other
// socket can take the port until the test ends.
//
//	addr := refused.Addr(t) // "127.0.0.1:41234"
//	_, err := http.Get("http://" + addr + "/") // connection refused
package refused

import "testing"

// Addr returns "127.0.0.1:PORT" where connections are refused until tb
// ends.
func Addr(tb testing.TB) string {
	tb.Helper()
	return addr(tb)
}
