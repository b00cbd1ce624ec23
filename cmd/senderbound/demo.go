package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/senderbound/senderbound/conformance"
	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/fullstack"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/oautherr"
)

// The demo's registered clients. The secrets are generated per run.
const (
	demoDPoPClient  = "dpop-app"
	demoMTLSClient  = fullstack.MTLSClientID
	demoScope       = fullstack.Scope
	demoAudience    = "https://rs.demo.test"
	demoAudience2   = "https://rs2.demo.test"
	demoResourceAPI = fullstack.ResourcePath
)

func runDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "demo", "demo [--json] [--report] [--timeout DUR]\n\n"+
		"Starts an issuer and resource servers on loopback HTTPS (a CA and client\n"+
		"certificates are generated for the run), walks through the DPoP and mTLS\n"+
		"flows and the attacks they stop, and the fallback certificate carrying a\n"+
		"client through an issuer outage (the issuer is stopped and restarted),\n"+
		"then runs the conformance suite against the servers. Exit status 0 only\n"+
		"if every step and every MUST case passed.")
	asJSON := fs.Bool("json", false, "print a machine-readable JSON report instead of text")
	full := fs.Bool("report", false, "print the full conformance report, not only its summary")
	timeout := fs.Duration("timeout", 3*time.Minute, "give up after this long")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	out := e.stdout
	if *asJSON {
		out = io.Discard
	}
	start := time.Now()
	d, err := startDemo(ctx)
	if err != nil {
		return fmt.Errorf("starting the servers: %w", err)
	}
	defer d.close()
	fmt.Fprintf(out, "senderbound demo: sender-constrained access tokens, end to end over loopback HTTPS\n\n")
	fmt.Fprintf(out, "  issuer            %s\n", d.asURL)
	fmt.Fprintf(out, "  resource          %s%s  (DPoP or mTLS, scope %q)\n", d.rsURL, demoResourceAPI, demoScope)
	fmt.Fprintf(out, "  second resource   %s%s  (another audience, its own replay cache)\n", d.rs2URL, demoResourceAPI)
	fmt.Fprintf(out, "  behind a proxy    %s%s  (trusts Client-Cert from loopback)\n", d.proxyURL, demoResourceAPI)
	fmt.Fprintf(out, "  nonces            required at the token endpoint and at the resources\n")
	fmt.Fprintf(out, "  fallback issuer   %s  (also the fallback CA: %s, %s; stopped and restarted below)\n", d.fb.asURL, issuer.CertificatePath, issuer.CRLPath)
	fmt.Fprintf(out, "  fallback resource %s/%s, /%s  (tokens, or the fallback certificate; CRL from %s)\n\n", d.fb.rsURL, demoScope, demoFallbackWrite, d.fb.crlURL)

	rep := demoReport{Issuer: d.asURL, Resource: d.rsURL + demoResourceAPI}
	for _, s := range d.steps() {
		detail, err := s.run(ctx)
		st := demoStep{Name: s.name, OK: err == nil, Detail: detail}
		if err != nil {
			st.Detail = err.Error()
		}
		rep.Steps = append(rep.Steps, st)
		mark := "ok  "
		if !st.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(out, "  %s  %s\n", mark, st.Name)
		fmt.Fprintf(out, "        %s\n", st.Detail)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}

	fmt.Fprintf(out, "\nconformance suite against these servers ...\n\n")
	crep, err := conformance.Run(ctx, d.target(), conformance.Options{})
	if err != nil {
		return fmt.Errorf("conformance: %w", err)
	}
	if *full {
		if err := crep.WriteText(out); err != nil {
			return err
		}
	} else {
		writeConformanceSummary(out, crep)
	}
	rep.Elapsed = time.Since(start).Round(time.Millisecond).String()
	rep.OK = !crep.Failed()
	for _, s := range rep.Steps {
		rep.OK = rep.OK && s.OK
	}
	if *asJSON {
		var b bytes.Buffer
		if err := crep.WriteJSON(&b); err != nil {
			return err
		}
		rep.Conformance = json.RawMessage(b.Bytes())
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		verdict := "PASS: every step and every MUST case passed"
		if !rep.OK {
			verdict = "FAIL: see the steps and cases marked FAIL above"
		}
		fmt.Fprintf(out, "\n%s (%s)\n", verdict, rep.Elapsed)
	}
	if !rep.OK {
		return errDemoFailed
	}
	return nil
}

// errDemoFailed is returned when a step or a MUST case failed; the report
// already says which.
var errDemoFailed = errors.New("a step or a MUST-level conformance case failed")

// demoReport is the --json output.
type demoReport struct {
	OK          bool            `json:"ok"`
	Issuer      string          `json:"issuer"`
	Resource    string          `json:"resource"`
	Steps       []demoStep      `json:"steps"`
	Conformance json.RawMessage `json:"conformance,omitempty"`
	Elapsed     string          `json:"elapsed"`
}

// demoStep is the outcome of one walk-through step.
type demoStep struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// writeConformanceSummary prints the totals by tier and every finding
// (accepted attack, missing feature, wrong refusal) with its reason.
func writeConformanceSummary(w io.Writer, r *conformance.Report) {
	t := r.TierTotals()
	fmt.Fprintf(w, "  %d cases: %d accepted attack, %d missing feature, %d wrong refusal, %d pass, %d record, %d skip\n", len(r.Results),
		t[conformance.TierAcceptedAttack], t[conformance.TierMissingFeature], t[conformance.TierWrongRefusal],
		t[conformance.TierPass], t[conformance.TierRecord], t[conformance.TierSkip])
	for _, res := range r.Results {
		if res.Tier.Failing() {
			fmt.Fprintf(w, "  %-16s  %-12s %-6s  %s\n", res.Tier, res.ID, res.Level, res.Reason)
		}
	}
	if r.Failed() {
		fmt.Fprintln(w, "  an attack was accepted or a MUST-level feature is missing")
	} else {
		fmt.Fprintln(w, "  no accepted attack, no missing MUST-level feature (run with --report for all cases)")
	}
}

// demo is the running set of servers and the material the clients use.
type demo struct {
	asURL, rsURL, rs2URL, proxyURL string

	roots            *x509.CertPool
	mtlsCert, intCrt tls.Certificate // registered client certificate, and a stranger's from the same CA
	dpopSecret       string
	introspectSecret string
	stack            *fullstack.Stack // the issuer and the resources
	fb               *fallbackDemo    // the fallback story's servers
}

// startDemo generates a CA and certificates, and starts on 127.0.0.1 the
// issuer, two resource servers, and the first resource again behind a
// "proxy" listener that trusts Client-Cert from loopback; nonces are
// required everywhere.
func startDemo(ctx context.Context) (*demo, error) {
	st, err := fullstack.Start(fullstack.Options{
		CAName:         "senderbound demo CA",
		CertTTL:        time.Hour,
		ClientID:       demoDPoPClient,
		SecondClientCN: "intruder",
		Audience:       demoAudience,
		SecondAudience: demoAudience2,
		Nonces:         true,
		TestGrant:      demoTestGrant,
		Handler:        http.HandlerFunc(serveResourceAnswer),
		NewServer:      newHTTPServer,
	})
	if err != nil {
		return nil, err
	}
	d := &demo{
		asURL: st.IssuerURL, rsURL: st.ResourceURL, rs2URL: st.SecondResourceURL, proxyURL: st.ProxyURL,
		roots: st.Roots, mtlsCert: st.ClientCert, intCrt: st.SecondClientCert,
		dpopSecret: st.ClientSecret, introspectSecret: st.IntrospectionSecret,
		stack: st,
	}
	if d.fb, err = startFallbackDemo(st.ServerCert, d.roots); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

func (d *demo) close() {
	_ = d.stack.Close()
	if d.fb != nil {
		d.fb.close()
	}
}

// target describes the demo's servers to the conformance suite with every
// capability the demo can offer.
func (d *demo) target() conformance.Target { return d.stack.Target() }

// demoTestGrant is the demo issuer's test hook for the suite's refresh-token
// cases: an extension grant standing in for an authorization code grant,
// which issues tokens and a refresh token for the fixed subject sent as
// "subject" (see fullstack.Options.TestGrant). It authenticates no user,
// so it exists only because the demo is a test deployment: never register
// such a grant on a production issuer.
const demoTestGrant = "urn:senderbound:demo:test-refresh-grant"

func randomSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// demoStepFunc is one walk-through step: it returns a one-line account of
// what happened, or an error saying what went wrong.
type demoStepFunc struct {
	name string
	run  func(ctx context.Context) (string, error)
}

// steps returns the walk-through. The steps share state (tokens, the
// proof to replay) and run in order.
func (d *demo) steps() []demoStepFunc {
	var (
		alice      *dpop.Prover
		rec        = &recorder{base: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: d.roots, MinVersion: tls.VersionTLS12}}}
		dpopClient *http.Client
		dpopToken  string
		lastProof  string
		mtlsToken  string
	)
	resourceURL := d.rsURL + demoResourceAPI
	return append([]demoStepFunc{
		{"a DPoP client gets a DPoP-bound token (answering the token endpoint's nonce challenge)", func(ctx context.Context) (string, error) {
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return "", err
			}
			if alice, err = dpop.NewProver(key, nil); err != nil {
				return "", err
			}
			dpopClient = &http.Client{Transport: &dpop.Transport{Base: rec, Prover: alice}, Timeout: 10 * time.Second}
			rec.reset()
			tok, err := requestToken(ctx, dpopClient, d.asURL+issuer.TokenPath, demoDPoPClient, d.dpopSecret)
			if err != nil {
				return "", err
			}
			first := rec.first()
			if first.status != http.StatusBadRequest || !strings.Contains(first.body, oautherr.UseDPoPNonce) {
				return "", fmt.Errorf("expected a 400 use_dpop_nonce challenge first, got %d", first.status)
			}
			if tok.TokenType != "DPoP" {
				return "", fmt.Errorf("token_type %q, want DPoP", tok.TokenType)
			}
			cnf, err := tokenCnf(tok.AccessToken)
			if err != nil {
				return "", err
			}
			if cnf["jkt"] != alice.Thumbprint() {
				return "", fmt.Errorf("cnf.jkt %q is not the client key's thumbprint %q", cnf["jkt"], alice.Thumbprint())
			}
			dpopToken = tok.AccessToken
			return fmt.Sprintf("400 use_dpop_nonce, retried with the nonce: 200 token_type=DPoP, cnf.jkt=%s", cnf["jkt"]), nil
		}},
		{"it calls the resource with a fresh proof", func(ctx context.Context) (string, error) {
			if dpopToken == "" {
				return "", errors.New("no token from the previous step")
			}
			rec.reset()
			status, body, err := call(ctx, dpopClient, resourceURL, "DPoP "+dpopToken, nil)
			if err != nil {
				return "", err
			}
			if status != http.StatusOK {
				return "", fmt.Errorf("status %d, want 200", status)
			}
			last := rec.last()
			lastProof = last.proof
			detail := fmt.Sprintf("200 %s", strings.TrimSpace(body))
			if n := len(rec.exchanges()); n > 1 {
				detail = "401 use_dpop_nonce, retried with the nonce: " + detail
			}
			return detail, nil
		}},
		{"a replayed proof is refused", func(ctx context.Context) (string, error) {
			if lastProof == "" {
				return "", errors.New("no proof from the previous step")
			}
			return expectRefused(ctx, d.plainClient(nil), resourceURL, "DPoP "+dpopToken, http.Header{"Dpop": {lastProof}}, oautherr.InvalidDPoPProof)
		}},
		{"the stolen DPoP token with the thief's own key is refused", func(ctx context.Context) (string, error) {
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return "", err
			}
			mallory, err := dpop.NewProver(key, nil)
			if err != nil {
				return "", err
			}
			thief := &http.Client{Transport: &dpop.Transport{Base: d.plainClient(nil).Transport, Prover: mallory}, Timeout: 10 * time.Second}
			return expectRefused(ctx, thief, resourceURL, "DPoP "+dpopToken, nil, oautherr.InvalidToken)
		}},
		{"the DPoP-bound token downgraded to Bearer is refused", func(ctx context.Context) (string, error) {
			return expectRefused(ctx, d.plainClient(nil), resourceURL, "Bearer "+dpopToken, nil, oautherr.InvalidToken)
		}},
		{"an mTLS client gets a certificate-bound token (tls_client_auth)", func(ctx context.Context) (string, error) {
			tok, err := requestToken(ctx, d.plainClient(&d.mtlsCert), d.asURL+issuer.TokenPath, demoMTLSClient, "")
			if err != nil {
				return "", err
			}
			if tok.TokenType != "Bearer" {
				return "", fmt.Errorf("token_type %q, want Bearer", tok.TokenType)
			}
			cnf, err := tokenCnf(tok.AccessToken)
			if err != nil {
				return "", err
			}
			want := mtlsbound.ThumbprintDER(d.mtlsCert.Certificate[0])
			if cnf["x5t#S256"] != want {
				return "", fmt.Errorf("cnf.x5t#S256 %q is not the client certificate's thumbprint %q", cnf["x5t#S256"], want)
			}
			mtlsToken = tok.AccessToken
			return fmt.Sprintf("200 token_type=Bearer, cnf.x5t#S256=%s", want), nil
		}},
		{"it calls the resource over the same certificate", func(ctx context.Context) (string, error) {
			status, body, err := call(ctx, d.plainClient(&d.mtlsCert), resourceURL, "Bearer "+mtlsToken, nil)
			if err != nil {
				return "", err
			}
			if status != http.StatusOK {
				return "", fmt.Errorf("status %d, want 200", status)
			}
			return "200 " + strings.TrimSpace(body), nil
		}},
		{"the stolen certificate-bound token over another certificate is refused", func(ctx context.Context) (string, error) {
			return expectRefused(ctx, d.plainClient(&d.intCrt), resourceURL, "Bearer "+mtlsToken, nil, oautherr.InvalidToken)
		}},
		{"the certificate-bound token without any certificate is refused", func(ctx context.Context) (string, error) {
			return expectRefused(ctx, d.plainClient(nil), resourceURL, "Bearer "+mtlsToken, nil, oautherr.InvalidToken)
		}},
	}, d.fb.fallbackSteps()...)
}

// plainClient returns an HTTPS client trusting the demo CA and presenting
// cert (nil presents none). It never adds DPoP proofs.
func (d *demo) plainClient(cert *tls.Certificate) *http.Client {
	return mtlsbound.NewClient(cert, d.roots)
}

// tokenResponse is the part of an RFC 6749 §5.1 response the demo reads.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
}

// requestToken performs a client_credentials request, authenticating with
// client_secret_basic when secret is set and otherwise sending client_id in
// the form (tls_client_auth).
func requestToken(ctx context.Context, c *http.Client, endpoint, clientID, secret string) (*tokenResponse, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {demoScope}}
	if secret == "" {
		form.Set("client_id", clientID)
	}
	body := form.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, tokenErrorResponse(resp, data)
	}
	var tok tokenResponse
	if err := json.Unmarshal(data, &tok); err != nil {
		return nil, fmt.Errorf("token endpoint: invalid JSON: %w", err)
	}
	return &tok, nil
}

// tokenCnf decodes, without verifying (the issuer just produced it), the
// cnf claim of a JWT access token.
func tokenCnf(token string) (map[string]string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("access token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var claims struct {
		Cnf map[string]string `json:"cnf"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, err
	}
	return claims.Cnf, nil
}

// call sends GET target with the Authorization value and extra headers.
func call(ctx context.Context, c *http.Client, target, authz string, h http.Header) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, "", err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", authz)
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, "", err
	}
	if resp.StatusCode != http.StatusOK {
		// One field per scheme (RFC 9110 §11.6.1); shown as one list.
		return resp.StatusCode, strings.Join(resp.Header.Values("WWW-Authenticate"), ", "), nil
	}
	return resp.StatusCode, string(body), nil
}

// expectRefused sends the request and succeeds only when it is refused
// with 401 and a challenge carrying the error code code; the detail is the
// status and the challenges.
func expectRefused(ctx context.Context, c *http.Client, target, authz string, h http.Header, code string) (string, error) {
	status, challenge, err := call(ctx, c, target, authz, h)
	if err != nil {
		return "", err
	}
	if status != http.StatusUnauthorized {
		return "", fmt.Errorf("status %d, want 401", status)
	}
	if !strings.Contains(challenge, `error="`+code+`"`) {
		return "", fmt.Errorf("401 without error=%q: %s", code, challenge)
	}
	return fmt.Sprintf("%d %s", status, challenge), nil
}

// recorder is an http.RoundTripper that remembers the status, DPoP proof
// and (small) error body of each exchange, so the demo can show the nonce
// challenge the dpop.Transport answered and replay a proof it sent.
type recorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	log  []exchange
}

type exchange struct {
	status int
	proof  string
	body   string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	x := exchange{status: resp.StatusCode, proof: req.Header.Get("DPoP")}
	if resp.StatusCode >= 400 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(data))
		x.body = string(data)
	}
	r.mu.Lock()
	r.log = append(r.log, x)
	r.mu.Unlock()
	return resp, nil
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.log = nil
	r.mu.Unlock()
}

func (r *recorder) exchanges() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exchange(nil), r.log...)
}

func (r *recorder) first() exchange {
	if x := r.exchanges(); len(x) > 0 {
		return x[0]
	}
	return exchange{}
}

func (r *recorder) last() exchange {
	if x := r.exchanges(); len(x) > 0 {
		return x[len(x)-1]
	}
	return exchange{}
}
