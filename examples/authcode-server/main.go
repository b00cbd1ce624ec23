// Command authcode-server is a small OAuth authorization server with the
// authorization-code grant (RFC 6749 §4.1) built around the issuer
// package: an authorization endpoint, a pushed authorization request
// endpoint (RFC 9126) and a token endpoint that binds each code to a DPoP
// key (RFC 9449 §10) when the authorization request named one, by a
// dpop_jkt parameter or by a DPoP proof sent to the PAR endpoint. PKCE
// with S256 is required (RFC 7636), redirect_uri must match the
// registration exactly, and codes are single use and live one minute.
//
// The authorization endpoint is NOT interactive: it approves every valid
// request at once for one configured test user (-user), so that programs
// and tests can drive the flow without a browser. A real server
// authenticates the user and asks for consent at that point.
//
// One confidential client, "web", authenticates with client_secret_basic
// (the secret comes from CLIENT_SECRET) and always gets DPoP-bound tokens.
// From the repository root:
//
//	export CLIENT_SECRET=example-secret-0123456789abcdefghij
//	go run ./examples/authcode-server &
//	go run ./cmd/senderbound serve-resource --addr 127.0.0.1:9001 --issuer http://127.0.0.1:9000 &
//	go run ./examples/authcode-server client
//
// The client subcommand runs the flow as a client would: it pushes the
// authorization request with a DPoP proof, follows the authorization
// endpoint to its redirect (reading the code from the Location header,
// never visiting the redirect_uri), redeems the code with a proof by the
// same key and calls the resource with the DPoP-bound token, printing its
// answer. The server signs with a key made at start; serve it behind TLS
// with an https issuer (plain http is accepted for loopback only).
// Interrupt (SIGINT) or SIGTERM stops it gracefully.
package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/oauth2"

	"github.com/senderbound/senderbound/issuer"
)

const (
	audience     = "https://resource.senderbound.test" // the aud the senderbound CLI's serve-resource expects
	clientID     = "web"
	authorizePth = "/authorize"
	codeLifetime = time.Minute
	maxCodes     = 10000
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "client" {
		clientMain(os.Args[2:])
		return
	}
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	issuerURL := flag.String("issuer", "", "public issuer URL (default http://ADDR, for loopback only)")
	redirectURI := flag.String("redirect-uri", "https://app.example.test/callback", "the redirect_uri registered for client web")
	user := flag.String("user", "alice", "the test user every authorization request is approved for")
	flag.Parse()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // use a KMS-backed crypto.Signer in production
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if *issuerURL == "" {
		*issuerURL = "http://" + ln.Addr().String()
	}
	h, err := newServer(config{Issuer: *issuerURL, Key: key, Secret: os.Getenv("CLIENT_SECRET"), RedirectURI: *redirectURI, User: *user})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Printf("authorization server %s listening on http://%s", *issuerURL, ln.Addr())
	if err := serve(ctx, &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, ln); err != nil {
		log.Fatal(err)
	}
}

// serve serves srv on ln until ctx ends, then shuts it down gracefully.
func serve(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Print("shut down")
	return nil
}

type config struct {
	Issuer      string
	Key         crypto.Signer
	Secret      string // client web's secret
	RedirectURI string // client web's registered redirect_uri
	User        string // the auto-approved test user
	Now         func() time.Time
}

// codeGrant is what an authorization code stands for.
type codeGrant struct {
	clientID, redirectURI, challenge, scope, subject, jkt string
	expires                                               time.Time
}

// app is the authorization server: the issuer's endpoints plus the
// authorization endpoint and the authorization_code grant.
type app struct {
	cfg    config
	srv    *issuer.Server
	scopes []string

	mu    sync.Mutex
	codes map[[32]byte]codeGrant // by SHA-256 of the code
}

func newServer(cfg config) (http.Handler, error) {
	if len(cfg.Secret) < 32 {
		return nil, errors.New("set CLIENT_SECRET to a random secret of at least 32 characters")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil {
		return nil, err
	}
	ks, err := issuer.NewKeySet(issuer.SigningKey{Signer: cfg.Key})
	if err != nil {
		return nil, err
	}
	is, err := issuer.New(issuer.Config{
		Issuer: cfg.Issuer, Keys: ks, Audience: []string{audience}, Now: cfg.Now,
		InsecureAllowHTTP: u.Scheme == "http" && (u.Hostname() == "127.0.0.1" || u.Hostname() == "localhost"),
	})
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, scopes: []string{"read", "write"}, codes: map[[32]byte]codeGrant{}}
	clients, err := issuer.NewMemoryRegistry(issuer.Client{
		ID: clientID, AuthMethod: issuer.AuthSecretBasic, SecretHash: issuer.HashSecret(cfg.Secret),
		Scopes: a.scopes, DPoPBoundAccessTokens: true,
		// client_credentials too: the client also calls APIs on its own behalf.
		GrantTypes: []string{"authorization_code", issuer.GrantClientCredentials},
	})
	if err != nil {
		return nil, err
	}
	replay, err := issuer.NewMemoryReplayStore(is, 0) // one instance; share a redisstore.Store between several
	if err != nil {
		return nil, err
	}
	a.srv, err = issuer.NewServer(issuer.ServerConfig{
		Issuer: is, Clients: clients, ReplayStore: replay, ScopesSupported: a.scopes,
		Grants:                 map[string]issuer.GrantHandler{"authorization_code": issuer.GrantHandlerFunc(a.redeem)},
		RefreshTokens:          issuer.NewMemoryRefreshStore(nil),       // one instance; share a redisrefresh.Store between several
		PAR:                    &issuer.PARConfig{Check: a.checkPushed}, // in memory, 60 s; plain requests work too
		AuthorizationEndpoint:  strings.TrimSuffix(cfg.Issuer, "/") + authorizePth,
		ResponseTypesSupported: []string{"code"},
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", a.srv.Handler()) // token, PAR, JWKS, metadata, introspection
	mux.HandleFunc(authorizePth, a.authorize)
	return mux, nil
}

var pkceValue = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`) // RFC 7636 §4.1

// authorize is the authorization endpoint (RFC 6749 §4.1.1): the request
// comes as a query, or by request_uri from the PAR endpoint. Errors are
// redirected to the client only once client_id and redirect_uri are known
// to be registered (RFC 6749 §4.1.2.1); before that they are a plain 400.
func (a *app) authorize(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	ar, err := a.srv.AuthorizationRequest(r.Context(), q)
	if err != nil {
		var e *issuer.Error
		// A plain request whose client and redirect_uri check out gets its
		// error at the redirect_uri; a bad request_uri gets none.
		if errors.As(err, &e) && !q.Has("request_uri") && q.Get("client_id") == clientID && q.Get("redirect_uri") == a.cfg.RedirectURI && len(q["state"]) <= 1 {
			a.redirect(w, r, url.Values{"error": {e.Code}, "error_description": {e.Description}, "state": {q.Get("state")}})
			return
		}
		http.Error(w, "invalid authorization request", http.StatusBadRequest)
		return
	}
	p := ar.Params
	if ar.ClientID != clientID || p["redirect_uri"] != a.cfg.RedirectURI {
		http.Error(w, "unknown client or redirect_uri", http.StatusBadRequest)
		return
	}
	fail := func(code, desc string) {
		a.redirect(w, r, url.Values{"error": {code}, "error_description": {desc}, "state": {p["state"]}})
	}
	if code, desc := a.check(p); code != "" {
		fail(code, desc)
		return
	}
	scope := p["scope"]
	// Here a real server authenticates the user and asks for consent.
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		http.Error(w, "server error", http.StatusInternalServerError)
		return
	}
	code := base64.RawURLEncoding.EncodeToString(raw[:])
	if !a.putCode(code, codeGrant{clientID: ar.ClientID, redirectURI: p["redirect_uri"], challenge: p["code_challenge"],
		scope: scope, subject: a.cfg.User, jkt: ar.DPoPJKT, expires: a.cfg.Now().Add(codeLifetime)}) {
		fail("temporarily_unavailable", "too many pending authorization codes")
		return
	}
	a.redirect(w, r, url.Values{"code": {code}, "state": {p["state"]}, "iss": {a.srv.Metadata().Issuer}})
}

// check validates response_type, PKCE and scope; it returns the RFC 6749
// §4.1.2.1 error code and description, or "" when the request is valid.
func (a *app) check(p map[string]string) (code, desc string) {
	switch {
	case p["response_type"] != "code":
		return "unsupported_response_type", "response_type must be code"
	case p["code_challenge_method"] != "S256" || !pkceValue.MatchString(p["code_challenge"]) || len(p["code_challenge"]) != 43:
		return "invalid_request", "PKCE with code_challenge_method S256 is required"
	}
	for _, s := range strings.Fields(p["scope"]) {
		if !slices.Contains(a.scopes, s) {
			return "invalid_scope", "scope not allowed"
		}
	}
	return "", ""
}

// checkPushed validates a pushed request at the PAR endpoint as the
// authorization endpoint will (RFC 9126 §2.1), so that a client learns of
// a bad request before it sends the user anywhere.
func (a *app) checkPushed(_ context.Context, c *issuer.Client, p map[string]string) error {
	if c.ID != clientID || p["redirect_uri"] != a.cfg.RedirectURI {
		return issuer.GrantError(issuer.ErrInvalidRequest, "redirect_uri is not registered for the client")
	}
	switch code, desc := a.check(p); code {
	case "":
		return nil
	case "invalid_scope":
		return issuer.GrantError(issuer.ErrInvalidScope, desc)
	default:
		return issuer.GrantError(issuer.ErrInvalidRequest, desc)
	}
}

// redirect sends the user agent to the registered redirect_uri with params
// (RFC 9207 iss on success); empty values are left out.
func (a *app) redirect(w http.ResponseWriter, r *http.Request, params url.Values) {
	u, _ := url.Parse(a.cfg.RedirectURI) // validated at registration
	q := u.Query()
	for k, vs := range params {
		if vs[0] != "" {
			q.Set(k, vs[0])
		}
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// putCode stores a code, dropping expired ones when the store is full;
// false when it is full of live codes.
func (a *app) putCode(code string, g codeGrant) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.codes) >= maxCodes {
		now := a.cfg.Now()
		for k, c := range a.codes {
			if !now.Before(c.expires) {
				delete(a.codes, k)
			}
		}
		if len(a.codes) >= maxCodes {
			return false
		}
	}
	a.codes[sha256.Sum256([]byte(code))] = g
	return true
}

// takeCode removes a code and returns what it stands for: a code is spent
// by its first presentation, whatever the outcome (RFC 6749 §4.1.2).
func (a *app) takeCode(code string) (codeGrant, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id := sha256.Sum256([]byte(code))
	g, ok := a.codes[id]
	delete(a.codes, id)
	return g, ok && a.cfg.Now().Before(g.expires)
}

// redeem is the authorization_code grant (RFC 6749 §4.1.3, RFC 7636
// §4.6). The issuer has authenticated the client and verified any DPoP
// proof; returning the code's dpop_jkt as Grant.DPoPJKT makes it refuse a
// proof by any other key, or none (RFC 9449 §10).
func (a *app) redeem(_ context.Context, req *issuer.GrantRequest) (*issuer.Grant, error) {
	g, ok := a.takeCode(req.Params["code"])
	if !ok || g.clientID != req.Client.ID || g.redirectURI != req.Params["redirect_uri"] {
		return nil, issuer.GrantError(issuer.ErrInvalidGrant, "invalid authorization code")
	}
	v := req.Params["code_verifier"]
	if !pkceValue.MatchString(v) || subtle.ConstantTimeCompare([]byte(oauth2.S256ChallengeFromVerifier(v)), []byte(g.challenge)) != 1 {
		return nil, issuer.GrantError(issuer.ErrInvalidGrant, "code_verifier does not match")
	}
	return &issuer.Grant{Subject: g.subject, Scope: g.scope, DPoPJKT: g.jkt}, nil
}

// clientMain runs the flow as client web and prints the resource's answer.
func clientMain(args []string) {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	server := fs.String("server", "http://127.0.0.1:9000", "the authorization server's issuer URL")
	api := fs.String("url", "http://127.0.0.1:9001/resource", "API URL to GET with the token")
	redirectURI := fs.String("redirect-uri", "https://app.example.test/callback", "client web's redirect_uri")
	_ = fs.Parse(args)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &flowClient{Server: *server, ClientID: clientID, Secret: os.Getenv("CLIENT_SECRET"), RedirectURI: *redirectURI, HTTP: http.DefaultClient}
	tok, err := c.run(ctx, key, flowOptions{PAR: true, Proof: true})
	if err != nil {
		log.Fatal(err)
	}
	body, err := c.call(ctx, key, *api, tok)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s", body)
}
