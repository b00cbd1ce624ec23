package conformance

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// earlyCloser is a server that reads a little of each request, then
// answers with answer (if any) and resets the connection, as servers do
// with oversized headers. hang keeps the connection open without a word.
func earlyCloser(t *testing.T, answer string, hang bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				buf := make([]byte, 4096)
				_, _ = io.ReadFull(bufio.NewReader(c), buf)
				if hang {
					time.Sleep(3 * time.Second)
					return
				}
				if answer != "" {
					_, _ = io.WriteString(c, answer)
				}
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // reset, discarding the unread request
				}
			}(c)
		}
	}()
	return "http://" + ln.Addr().String() + "/resource"
}

// TestOversizedRequestClosedIsRefusal: a server that answers an oversized
// request early and closes (or resets) the connection has refused it,
// whatever the race between the suite's write and the server's close; a
// server that never answers has not.
func TestOversizedRequestClosedIsRefusal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		answer string
		hang   bool
		want   Tier
	}{
		{"431 then reset", "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false, TierPass},
		{"reset without an answer", "", false, TierPass},
		{"no answer until the timeout", "", true, TierWrongRefusal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := earlyCloser(t, tt.answer, tt.hang)
			target := Target{TokenEndpoint: u, ClientID: "app", Resource: u, Timeout: time.Second}
			s, err := newSession(target, time.Now)
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			// A token the server never gets to read: the request is refused
			// on its size.
			s.at1 = &issued{access: "conformance-test-token", tokenType: "DPoP", obtained: time.Now(), expiresIn: 300, key: s.k1}
			for _, c := range []struct {
				Case
				steps []step
			}{
				{Case{ID: "ADV-41", Level: LevelMust}, []step{oversized(rawStep("1 MiB proof", func(_ *run, p string) string { return p + strings.Repeat("A", 1<<20) }, wantAny4xx))}},
				{Case{ID: "ADV-45", Level: LevelMust}, []step{hugeJTIStep()}},
				{Case{ID: "ADV-60", Level: LevelMust}, []step{hugeHTUStep()}},
				{Case{ID: "ADV-104", Level: LevelMust}, hugeHeaderSteps()},
			} {
				r := &run{ctx: context.Background(), s: s, c: &c.Case}
				r.steps(c.steps...)
				for _, ch := range r.checks {
					if ch.Tier != tt.want {
						t.Errorf("%s %s: %s (%s), want %s", c.ID, ch.Name, ch.Tier, ch.Reason, tt.want)
					}
				}
			}
		})
	}
}

// TestOversizedReadsTheEarlyAnswer: the 431 a server sends before the
// request is fully written is what the exchange reports.
func TestOversizedReadsTheEarlyAnswer(t *testing.T) {
	t.Parallel()
	u := earlyCloser(t, "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false)
	s, err := newSession(Target{TokenEndpoint: u, ClientID: "app", Resource: u, Timeout: 2 * time.Second}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Big", strings.Repeat("A", 64<<10))
	x := s.doOversized(t.Context(), req, nil)
	if x.status != 431 && !x.closed {
		t.Errorf("got %s (closed %v), want 431 or a closed connection", x.describe(), x.closed)
	}
}
