package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// maxIntrospectionBody caps what the recording proxy reads from the
// resource server and from the introspection endpoint.
const maxIntrospectionBody = 64 << 10

// RFC 9449 Figures 10 and 11 (CHECKLIST KAT-7): the example opaque token
// and the introspection response the proxy answers for it itself.
const (
	kat7Token  = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
	kat7Answer = `{"active": true, "sub": "someone@example.com", "iss": "https://server.example.com", "nbf": 1562262611, "exp": 1562266216, "cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}`
)

// introCall is what the recording proxy keeps of one introspection call
// by the resource server: never the token or credentials, only the
// token's hash and what was sent besides it.
type introCall struct {
	token [32]byte // SHA-256 of the token parameter
	// dpopHeader: a DPoP header field was sent (RFC 9449 §6.2: the RS
	// sends none).
	dpopHeader bool
	// proof: a form parameter named dpop, or one whose value is a JWS
	// with typ dpop+jwt, was sent.
	proof bool
}

// introProxy is the suite's recording introspection proxy: it listens on
// Target.IntrospectionProxy, forwards each call to
// Target.IntrospectionEndpoint and records what the resource server sent.
// It answers the RFC 9449 example token itself with Figure 11.
type introProxy struct {
	srv      *http.Server
	upstream string
	client   *http.Client
	mu       sync.Mutex
	calls    []introCall
	done     chan struct{}
}

// startIntroProxy serves the proxy on l until close.
func startIntroProxy(l net.Listener, upstream string, client *http.Client) *introProxy {
	p := &introProxy{upstream: upstream, client: client, done: make(chan struct{})}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(p.done)
		_ = p.srv.Serve(l)
	}()
	return p
}

// close stops the proxy and waits for it.
func (p *introProxy) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
	<-p.done
}

// callsFor returns the recorded calls that introspected tok.
func (p *introProxy) callsFor(tok string) []introCall {
	h := sha256.Sum256([]byte(tok))
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []introCall
	for _, c := range p.calls {
		if c.token == h {
			out = append(out, c)
		}
	}
	return out
}

func (p *introProxy) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxIntrospectionBody+1))
	if err != nil || len(body) > maxIntrospectionBody || r.Method != http.MethodPost {
		http.Error(w, "bad introspection request", http.StatusBadRequest)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "bad introspection request", http.StatusBadRequest)
		return
	}
	c := introCall{token: sha256.Sum256([]byte(form.Get("token")))}
	for name := range r.Header {
		if strings.EqualFold(name, "DPoP") {
			c.dpopHeader = true
		}
	}
	for name, vs := range form {
		if strings.EqualFold(name, "dpop") {
			c.proof = true
		}
		for _, v := range vs {
			if h, _, err := decodeJWT(v); err == nil && strings.EqualFold(str(h["typ"]), "dpop+jwt") {
				c.proof = true
			}
		}
	}
	p.mu.Lock()
	p.calls = append(p.calls, c)
	p.mu.Unlock()

	w.Header().Set("Cache-Control", "no-store")
	if form.Get("token") == kat7Token {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, kat7Answer)
		return
	}
	if p.upstream == "" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"active":false}`)
		return
	}
	status, ctype, answer, err := p.forward(r, body)
	if err != nil {
		http.Error(w, "introspection endpoint unreachable", http.StatusBadGateway)
		return
	}
	if ctype != "" {
		w.Header().Set("Content-Type", ctype)
	}
	w.WriteHeader(status)
	_, _ = w.Write(answer)
}

// forward sends the call on to the introspection endpoint with the
// resource server's own client authentication.
func (p *introProxy) forward(r *http.Request, body []byte) (int, string, []byte, error) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, p.upstream, bytes.NewReader(body))
	if err != nil {
		return 0, "", nil, err
	}
	for _, h := range []string{"Content-Type", "Authorization", "Accept"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxIntrospectionBody+1))
	if err != nil {
		return 0, "", nil, err
	}
	if len(answer) > maxIntrospectionBody {
		return 0, "", nil, errors.New("introspection answer too large")
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), answer, nil
}

// str returns v when it is a string, else "".
func str(v any) string {
	s, _ := v.(string)
	return s
}
