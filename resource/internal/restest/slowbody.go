package restest

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// SlowBodyCase is a refused request whose body the client never finishes.
type SlowBodyCase struct {
	Name string
	// Authorization is the field value to send, or "" for none.
	Authorization func(testing.TB, *Env) string
	WantStatus    int
}

// SlowBodyCases are requests that Check refuses before reading the body:
// no Authorization field (the body begins with an access_token parameter,
// the RFC 6750 §2.2 method, which this resource does not accept), an
// invalid token, and a DPoP-bound token under Bearer.
func SlowBodyCases() []SlowBodyCase {
	return []SlowBodyCase{
		{Name: "ERR-01/no credentials", WantStatus: http.StatusUnauthorized},
		{Name: "ATV-18/invalid token", Authorization: func(testing.TB, *Env) string { return "Bearer INVALID_TOKEN" }, WantStatus: http.StatusUnauthorized},
		{Name: "ERR-13/DPoP-bound token under Bearer", Authorization: func(t testing.TB, e *Env) string { return "Bearer " + K1Token(t, e) }, WantStatus: http.StatusUnauthorized},
	}
}

// RunSlowBody sends each case as an HTTP/1.1 POST with a form body that
// announces 64 KiB and stops after a few bytes, over a raw connection to
// base (a plain-HTTP server of NetHTTPHandler or an adapter): the refusal
// must arrive without the server waiting for the body, and the server must
// then close the connection instead of waiting for the rest of it.
func RunSlowBody(t *testing.T, e *Env, base string) {
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range SlowBodyCases() {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var req strings.Builder
			req.WriteString("POST /any HTTP/1.1\r\nHost: " + u.Host + "\r\n")
			req.WriteString("Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 65536\r\n")
			if tc.Authorization != nil {
				req.WriteString("Authorization: " + tc.Authorization(t, e) + "\r\n")
			}
			req.WriteString("\r\naccess_token=")
			if _, err := io.WriteString(conn, req.String()); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no response while the body is incomplete: %v", err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("response body: %v", err)
			}
			if resp.StatusCode != tc.WantStatus {
				t.Fatalf("status = %d (%q), want %d", resp.StatusCode, body, tc.WantStatus)
			}
			if strings.HasPrefix(string(body), "ok") {
				t.Fatal("handler ran on a refused request")
			}
			if !resp.Close {
				t.Fatal("refusal of a request with an unread body keeps the connection open")
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Fatalf("connection not closed after the refusal: %v", err)
			}
		})
	}
}
