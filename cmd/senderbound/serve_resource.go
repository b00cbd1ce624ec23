package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/senderbound/senderbound/fallback"
	"github.com/senderbound/senderbound/mtlsbound"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/trustedproxy"
)

const serveResourceSynopsis = `serve-resource --addr HOST:PORT --issuer URL [--jwks URL] [--audience AUD]
       [--require dpop|mtls|any] [--allow-bearer] [--scope S]... [--require-nonce]
       [--public-url URL] [--trusted-proxy CIDR]... [--forwarded-headers x-forwarded|forwarded|none]
       [--ca-file FILE] [--redis URL [--redis-password-file FILE]] [--replay-capacity N] [--replay-quota N]
       [--nonce-secret-file FILE]
       [--tls-cert FILE --tls-key FILE [--client-ca FILE]]
       [--max-connections N] [--idle-timeout DUR] [--read-header-timeout DUR]
       [--log-level debug|info|warn|error] [--log-format text|json] [--ops-addr HOST:PORT]
       [--fallback-ca FILE --fallback-crl URL [--crl-refresh DUR] [--crl-grace DUR]]
       [--token-cache N] [--baseline] [--cpu-profile FILE]

Serves GET and POST /resource, protected by sender-constrained access tokens,
and RFC 9728 metadata at /.well-known/oauth-protected-resource. An accepted
request gets 200 JSON with iss, sub, client_id, scope, binding ("dpop", "mtls"
or "bearer") and the matched binding value ("jkt" and/or "x5t#S256").

--issuer is the issuer identifier that every token's iss must equal. Its keys
are discovered from its metadata (RFC 8414, then OpenID discovery), unless
--jwks names the key set URL, which is then fetched directly; --jwks without
--issuer is refused. Plain HTTP is served only on loopback (DPoP over plain HTTP
is then accepted, for local tests) or behind a --trusted-proxy.

Behind a TLS-terminating proxy, set --public-url to the URL clients use: each
DPoP proof is checked against it. Without it, the scheme and host come from the
one header family the proxy sets, named by --forwarded-headers (default
x-forwarded: X-Forwarded-Proto and X-Forwarded-Host; forwarded: RFC 7239
Forwarded; none: the proxy forwards neither, --public-url is then required).
The other family is never read, and a request from the proxy that carries it is
refused with 400: common proxies pass a client's copy of the family they do not
set through untouched. From a trusted proxy the client certificate is the one
forwarded in Client-Cert (a certificate on the proxy's own connection is the
proxy's, not the client's), so list only proxies.

With --fallback-ca (the issuer's fallback CA certificate, PEM) and
--fallback-crl (its CRL URL, fetched every --crl-refresh), a request without
an access token is also accepted with a client certificate of that CA, over
mTLS or as a signed request (a DPoP-format proof carrying the certificate in
x5c); its binding is "fallback_certificate". Once the CRL is older than its
nextUpdate plus --crl-grace, such requests get 503; token requests do not.

For measurements: --token-cache 0 verifies every token's signature on every
request; --baseline also serves GET /baseline, the same kind of answer with no
check at all, to compare a protected request's cost with; --cpu-profile writes
a CPU profile (go tool pprof) of the whole run, until shutdown.

Several instances behind one load balancer: --redis shares the DPoP replay
cache (its password from --redis-password-file or SENDERBOUND_REDIS_PASSWORD
rather than the URL); with --require-nonce, --nonce-secret-file (or
SENDERBOUND_NONCE_SECRET) shares the nonce secret, so that a nonce from one
instance is accepted at the others; it needs --public-url (or a
--trusted-proxy), the same at every instance. Secret files must be readable by
their owner only; a trailing newline is ignored.` + serveNonceSecretHelp

// runServeResource implements "serve-resource".
func runServeResource(ctx context.Context, e *env, args []string) error {
	const cmd = "serve-resource"
	fs := newFlags(e, cmd, serveResourceSynopsis)
	addr := fs.String("addr", "", "listen address HOST:PORT (required; port 0 picks a free port)")
	issuerID := fs.String("issuer", "", "trusted issuer identifier, compared exactly with iss (required); keys are discovered from its metadata unless --jwks is set")
	jwksURL := fs.String("jwks", "", "fetch the issuer's keys from this JWK Set URL instead of discovering it")
	audience := fs.String("audience", serveDefaultAudience, "this resource's identifier; a token's aud must contain it")
	caFile := fs.String("ca-file", "", "trust only the CA certificates in this PEM file (instead of the system roots) when fetching metadata and keys, and for rediss:// URLs")
	require := fs.String("require", "any", "token binding to accept: dpop (DPoP-bound only), mtls (certificate-bound only) or any (either)")
	allowBearer := fs.Bool("allow-bearer", false, "also accept unbound bearer tokens (only with --require any)")
	requireNonce := fs.Bool("require-nonce", false, "require a resource-server nonce in every DPoP proof (RFC 9449 §9)")
	publicURL := fs.String("public-url", "", "externally visible base URL, for the DPoP htu; recommended behind a proxy (default: the listen address as http(s)://HOST:PORT, or with --trusted-proxy the scheme and host the proxy forwards; required when HOST is empty or unspecified)")
	var proxies, scopes listFlag
	fs.Var(&proxies, "trusted-proxy", "CIDR or address of a TLS-terminating proxy whose RFC 9440 Client-Cert and forwarded scheme and host are believed, repeatable")
	forwardedHeaders := fs.String("forwarded-headers", trustedproxy.HeadersXForwarded.String(), "header family the --trusted-proxy sets for the scheme and host: x-forwarded (X-Forwarded-Proto/-Host), forwarded (RFC 7239) or none; requests carrying the other family are refused")
	var tf serveTLSFlags
	tf.register(fs, "verify client certificates against these CAs (PEM) at the handshake when one is sent; default: request without verifying (RFC 8705 §6.2), as self-signed clients need")
	redisURL := fs.String("redis", "", "share the DPoP replay cache through Redis, e.g. redis://host:6379/0 (default: in memory, one instance)")
	replayCapacity := fs.Int("replay-capacity", replaycache.DefaultCapacity, "entries of the in-memory DPoP replay cache (without --redis); when full of live entries, DPoP requests are refused with 503")
	replayQuota := fs.Int("replay-quota", replaycache.DefaultQuotaLimit, "replay-cache entries one DPoP key (one token's cnf.jkt) may create per 105 s; beyond it its proofs are refused")
	fs.Var(&scopes, "scope", "scope every request's token must carry, repeatable")
	fallbackCA := fs.String("fallback-ca", "", "accept requests without a token that present a client certificate of this fallback CA (PEM; the first certificate signs the CRL)")
	fallbackCRL := fs.String("fallback-crl", "", "the fallback CA's CRL URL, e.g. ISSUER/crl (required with --fallback-ca)")
	crlRefresh := fs.Duration("crl-refresh", fallback.DefaultCRLRefresh, "interval between fetches of --fallback-crl")
	crlGrace := fs.Duration("crl-grace", fallback.DefaultCRLGrace, "how long past its nextUpdate the last fetched CRL is still used")
	tokenCache := fs.Int("token-cache", serveDefaultTokenCache, "verified access tokens kept to skip their signature check on reuse; 0 checks every token's signature on every request")
	baseline := fs.Bool("baseline", false, "also serve GET /baseline without any check (an unprotected handler, to measure what protection costs)")
	cpuProfile := fs.String("cpu-profile", "", "write a CPU profile of the run to this file (for go tool pprof), until shutdown")
	var cf serveConnFlags
	cf.register(fs)
	var lf serveLogFlags
	lf.register(fs)
	var of serveOpsFlags
	of.register(fs)
	var sf serveSharedFlags
	sf.register(fs)
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if *replayCapacity < 1 || *replayQuota < 1 {
		return serveUsagef(e, cmd, "--replay-capacity and --replay-quota must be at least 1")
	}
	if *tokenCache < 0 {
		return serveUsagef(e, cmd, "--token-cache must not be negative")
	}
	if (*fallbackCA == "") != (*fallbackCRL == "") {
		return serveUsagef(e, cmd, "--fallback-ca and --fallback-crl go together")
	}
	if *crlRefresh <= 0 || *crlGrace <= 0 {
		return serveUsagef(e, cmd, "--crl-refresh and --crl-grace must be positive")
	}
	if *fallbackCRL != "" {
		if u, err := url.Parse(*fallbackCRL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return serveUsagef(e, cmd, "--fallback-crl must be an absolute http(s) URL")
		}
	}

	if *addr == "" {
		return serveUsagef(e, cmd, "--addr is required")
	}
	listenHost, err := serveAddrHost(*addr)
	if err != nil {
		return serveUsagef(e, cmd, "--addr must be HOST:PORT")
	}
	if err := tf.check(e, cmd); err != nil {
		return err
	}
	if err := cf.check(e, cmd); err != nil {
		return err
	}
	if err := of.check(e, cmd); err != nil {
		return err
	}
	logger, err := lf.logger(e, cmd, e.stderr)
	if err != nil {
		return err
	}
	ops := newServeOps(logger)
	switch {
	case *issuerID == "" && *jwksURL != "":
		return serveUsagef(e, cmd, "--jwks needs --issuer, the identifier that tokens' iss must equal")
	case *issuerID == "":
		return serveUsagef(e, cmd, "--issuer is required")
	}
	for _, f := range []struct{ name, value string }{{"--issuer", *issuerID}, {"--jwks", *jwksURL}, {"--public-url", *publicURL}} {
		if f.value == "" {
			continue
		}
		if u, err := url.Parse(f.value); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.ContainsAny(f.value, "?#") {
			return serveUsagef(e, cmd, "%s must be an absolute http(s) URL without query or fragment", f.name)
		}
	}
	if *audience == "" {
		return serveUsagef(e, cmd, "--audience must not be empty")
	}
	var policy resource.Policy
	switch *require {
	case "any":
		policy.Accept = resource.AcceptBound
		if *allowBearer {
			policy.Accept = resource.AcceptAny
		}
	case "dpop":
		policy.Accept = resource.AcceptDPoP
	case "mtls":
		policy.Accept = resource.AcceptMTLS
	default:
		return serveUsagef(e, cmd, "--require must be dpop, mtls or any")
	}
	if *allowBearer && *require != "any" {
		return serveUsagef(e, cmd, "--allow-bearer needs --require any")
	}
	if *requireNonce && policy.Accept == resource.AcceptMTLS {
		return serveUsagef(e, cmd, "--require-nonce needs DPoP, which --require mtls turns off")
	}
	for _, s := range scopes {
		if s == "" || strings.ContainsAny(s, " \t\"\\") {
			return serveUsagef(e, cmd, "--scope %q is not a scope token", s)
		}
	}
	headers, err := trustedproxy.ParseHeaders(*forwardedHeaders)
	if err != nil {
		return serveUsagef(e, cmd, "--forwarded-headers must be x-forwarded, forwarded or none")
	}
	var trusted *trustedproxy.Set
	if len(proxies) > 0 {
		if trusted, err = trustedproxy.New(trustedproxy.Config{Peers: proxies, Headers: headers}); err != nil {
			return serveUsagef(e, cmd, "--trusted-proxy: %v", err)
		}
	} else if serveFlagSet(fs, "forwarded-headers") {
		return serveUsagef(e, cmd, "--forwarded-headers needs --trusted-proxy")
	}
	if trusted != nil && headers == trustedproxy.HeadersNone && *publicURL == "" && policy.Accept != resource.AcceptMTLS {
		return serveUsagef(e, cmd, "--forwarded-headers none needs --public-url, the URL clients use, checked against each DPoP proof")
	}
	// The nonce label is the public URL, or the audience behind a proxy;
	// only a derived public URL differs between instances.
	nonceSecrets, err := sf.nonceSecrets(e, cmd, *requireNonce, *publicURL != "" || len(proxies) > 0, "--public-url, the URL clients use")
	if err != nil {
		return err
	}
	redisPassword, redisPasswordInURL, err := sf.redisPassword(e, cmd, *redisURL)
	if err != nil {
		return err
	}
	if !tf.enabled() && len(proxies) == 0 {
		if !serveIsLoopbackHost(listenHost) {
			return serveUsagef(e, cmd, "without --tls-cert, serve-resource listens only on loopback, or behind a --trusted-proxy")
		}
		if policy.Accept == resource.AcceptMTLS {
			return serveUsagef(e, cmd, "--require mtls needs --tls-cert or a --trusted-proxy that forwards Client-Cert")
		}
	}

	var tlsConfig *tls.Config
	if tf.enabled() {
		cert, err := serveLoadTLS(tf.cert, tf.key)
		if err != nil {
			return err
		}
		tlsConfig = mtlsbound.ServerTLSConfig(cert)
		if tf.clientCA != "" {
			pool, err := serveLoadPool("--client-ca", tf.clientCA)
			if err != nil {
				return err
			}
			tlsConfig.ClientCAs = pool
			tlsConfig.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	var roots *x509.CertPool
	var httpClient *http.Client
	if *caFile != "" {
		if roots, err = serveLoadPool("--ca-file", *caFile); err != nil {
			return err
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		httpClient = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	rm := newOpsResourceMetrics(ops)
	ksCfg := resource.RemoteKeySetConfig{HTTPClient: httpClient, Metrics: rm}
	if *jwksURL != "" {
		ksCfg.JWKSURL = *jwksURL
	} else {
		ksCfg.Issuer = *issuerID
	}
	keys, err := resource.NewRemoteKeySet(ksCfg)
	if err != nil {
		return err
	}

	// The DPoP htu is checked against the URL clients use: --public-url,
	// else the address actually bound, never the Host header a client sends.
	derivePublic := *publicURL == "" && len(proxies) == 0 && policy.Accept != resource.AcceptMTLS
	if ip := net.ParseIP(listenHost); derivePublic && (listenHost == "" || ip != nil && ip.IsUnspecified()) {
		return serveUsagef(e, cmd, "--public-url is needed when listening on all interfaces: it is the URL clients use, checked against each DPoP proof")
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if derivePublic {
		scheme := "http"
		if tf.enabled() {
			scheme = "https"
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		*publicURL = scheme + "://" + net.JoinHostPort(listenHost, port)
	}
	closeLn := true
	defer func() {
		if closeLn {
			ln.Close()
		}
	}()
	cfg := resource.Config{
		Issuers:        []resource.Issuer{{Identifier: *issuerID, Keys: keys}},
		Audience:       *audience,
		Algorithms:     slices.Clone(serveAlgorithms),
		PublicURL:      *publicURL,
		TrustedProxies: trusted,
		// Plain HTTP is served only on loopback (checked above) unless a
		// trusted proxy terminates TLS, whose requests count as TLS anyway.
		InsecureAllowDPoPOverHTTP: !tf.enabled() && serveIsLoopbackHost(listenHost),
		Logger:                    logger,
		TokenCacheSize:            serveTokenCacheSize(*tokenCache),
		Metrics:                   rm,
	}
	var closeStore func()
	if policy.Accept != resource.AcceptMTLS {
		dc := &resource.DPoPConfig{Algorithms: slices.Clone(serveAlgorithms), KeyQuota: replaycache.QuotaConfig{Limit: *replayQuota}}
		if *redisURL != "" {
			defer opsQuietRedis(logger)()
			store, rdb, err := serveRedisStore(ctx, *redisURL, roots, redisPassword)
			if err != nil {
				return err
			}
			if redisPasswordInURL {
				serveRedisPasswordNote(e)
			}
			dc.ReplayStore, closeStore = store, func() { rdb.Close() }
			ops.addCheck("replay_store", opsRedisCheck(rdb))
		} else {
			lru, err := replaycache.NewLRU(replaycache.Config{Capacity: *replayCapacity})
			if err != nil {
				return err
			}
			dc.ReplayStore = lru
		}
		if *requireNonce {
			label := *publicURL
			if label == "" {
				label = *audience
			}
			n, err := serveNonces(label, nonceSecrets)
			if err != nil {
				return err
			}
			dc.Nonces = n
		}
		cfg.DPoP = dc
	} else if *redisURL != "" {
		fmt.Fprintln(e.stderr, "note: --redis is unused with --require mtls (no DPoP proofs to remember)")
	}
	if closeStore != nil {
		defer closeStore()
	}
	if *fallbackCA != "" {
		fv, closeFetcher, err := serveFallbackVerifier(ctx, e, serveFallbackParams{
			caFile: *fallbackCA, crlURL: *fallbackCRL, refresh: *crlRefresh, grace: *crlGrace,
			client: httpClient, dpop: cfg.DPoP, ops: ops,
		})
		if err != nil {
			return err
		}
		defer closeFetcher()
		cfg.Fallback = fv
		policy.Fallback = true
	}
	v, err := resource.New(cfg)
	if err != nil {
		return err
	}
	if err := v.ValidatePolicy(policy); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(resource.MetadataPath, v.MetadataHandler(policy, slices.Clone(scopes)))
	protected := v.Middleware(resource.Policy{Accept: policy.Accept, Scopes: slices.Clone(scopes), Fallback: policy.Fallback})(http.HandlerFunc(serveResourceAnswer))
	mux.Handle("GET /resource", protected)
	mux.Handle("POST /resource", protected)
	if *baseline {
		mux.HandleFunc("GET /baseline", serveBaselineAnswer)
	}
	if *cpuProfile != "" {
		stop, err := serveStartCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	ops.addCheck("keys", opsKeysCheck(keys))
	defer serveStartupKeys(ctx, e, keys, cmp.Or(*jwksURL, "the metadata of "+*issuerID), resource.DefaultMinRefreshInterval)()
	h, stopOps, err := ops.start(ctx, e, of, listenHost, mux)
	if err != nil {
		return err
	}
	defer stopOps()
	closeLn = false // serveListener owns it
	return serveListener(ctx, e, ln, tlsConfig, h, cf)
}

// serveDefaultTokenCache is the default of serve-resource --token-cache,
// resource.Config's default.
const serveDefaultTokenCache = 10_000

// serveTokenCacheSize maps --token-cache to Config.TokenCacheSize, where 0
// means the default and a negative size disables the cache.
func serveTokenCacheSize(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// serveBaselineAnswer answers GET /baseline without any check, through
// the same writer as serveResourceAnswer and with a body of about the same
// size, so that the two differ only by the check.
func serveBaselineAnswer(w http.ResponseWriter, _ *http.Request) {
	serveWriteAnswer(w, &serveAnswer{
		Issuer:   "https://as.baseline.test",
		Subject:  "baseline",
		ClientID: "baseline",
		Binding:  "none",
		X5T:      "0000000000000000000000000000000000000000000",
	})
}

// serveResourceAnswer answers an admitted request with what the token and
// its binding said.
func serveResourceAnswer(w http.ResponseWriter, r *http.Request) {
	p := resource.PrincipalFromContext(r.Context())
	body := serveAnswer{
		Issuer:   p.Issuer,
		Subject:  p.Subject,
		ClientID: p.ClientID,
		Scope:    strings.Join(p.Scopes, " "),
		Binding:  string(p.Binding),
	}
	switch p.Binding {
	case resource.BindingDPoP:
		body.JKT = p.BindingValue
	case resource.BindingMTLS:
		body.X5T = p.BindingValue
	}
	if p.CertThumbprint != "" {
		body.X5T = p.CertThumbprint
	}
	serveWriteAnswer(w, &body)
}

// serveAnswer is the JSON body of an admitted request. A struct, not a
// map: encoding a map sorts its keys through reflection, which cost about
// a tenth of an mTLS-bound request's server CPU.
type serveAnswer struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	Binding  string `json:"binding"`
	JKT      string `json:"jkt,omitempty"`
	X5T      string `json:"x5t#S256,omitempty"`
}

// serveWriteAnswer writes body as the JSON answer.
func serveWriteAnswer(w http.ResponseWriter, body *serveAnswer) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}
