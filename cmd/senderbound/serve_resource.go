package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
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
       [--introspection-endpoint URL --introspection-client ID[:SECRET|:@FILE] [--introspection-max-concurrent N]]
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

For an issuer that hands out opaque access tokens (serve-issuer
--access-token-format opaque), --introspection-endpoint names its RFC 7662
endpoint: a token that is not a JWT is sent there, with this server
authenticated by client_secret_basic as --introspection-client ID:@FILE (the
secret in FILE, readable by its owner only), ID (the secret in
SENDERBOUND_CLIENT_SECRET_<ID>) or ID:SECRET (visible in the process table).
The answer's cnf binds the token exactly as a JWT's does; answers are cached
for at most 30 s and never past exp. The endpoint must use https unless it is
on a loopback address; its failures are answered with 503. At most
--introspection-max-concurrent calls (default 64) are under way at once: a
token that is not cached and would need one more is answered 503 at once,
so a flood of made-up tokens does not become a flood at the issuer. JWTs
are still verified with the issuer's keys.

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

// serveResourceFlags are the flags of serve-resource.
type serveResourceFlags struct {
	addr, issuerID, jwksURL, audience, caFile string
	require                                   string
	allowBearer, requireNonce                 bool
	publicURL                                 string
	proxies, scopes                           listFlag
	forwardedHeaders                          string
	// forwardedHeadersSet says --forwarded-headers was given, not
	// defaulted; the caller of register sets it after parsing.
	forwardedHeadersSet         bool
	redisURL                    string
	replayCapacity, replayQuota int
	fallbackCA, fallbackCRL     string
	crlRefresh, crlGrace        time.Duration
	tokenCache                  int
	baseline                    bool
	cpuProfile                  string
	tls                         serveTLSFlags
	conn                        serveConnFlags
	log                         serveLogFlags
	ops                         serveOpsFlags
	shared                      serveSharedFlags

	// introspectionEndpoint and introspectionClient validate opaque
	// tokens at the issuer's introspection endpoint.
	introspectionEndpoint, introspectionClient string
	// introspectionMax bounds the introspection calls under way.
	introspectionMax int
}

// register defines the flags on fs.
func (f *serveResourceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "addr", "", "listen address HOST:PORT (required; port 0 picks a free port)")
	fs.StringVar(&f.issuerID, "issuer", "", "trusted issuer identifier, compared exactly with iss (required); keys are discovered from its metadata unless --jwks is set")
	fs.StringVar(&f.jwksURL, "jwks", "", "fetch the issuer's keys from this JWK Set URL instead of discovering it")
	fs.StringVar(&f.introspectionEndpoint, "introspection-endpoint", "", "the issuer's RFC 7662 introspection endpoint, for opaque access tokens (needs --introspection-client)")
	fs.StringVar(&f.introspectionClient, "introspection-client", "", "this server's client at the introspection endpoint (client_secret_basic) as ID:@FILE (secret in FILE), ID (secret in $"+serveSecretEnvPrefix+"<ID>) or ID:SECRET (visible in the process table)")
	fs.IntVar(&f.introspectionMax, "introspection-max-concurrent", 64, "introspection calls under way at once, at least 1; a token that would need one more is answered 503 without calling the issuer (with --introspection-endpoint)")
	fs.StringVar(&f.audience, "audience", serveDefaultAudience, "this resource's identifier; a token's aud must contain it")
	fs.StringVar(&f.caFile, "ca-file", "", "trust only the CA certificates in this PEM file (instead of the system roots) when fetching metadata and keys, and for rediss:// URLs")
	fs.StringVar(&f.require, "require", "any", "token binding to accept: dpop (DPoP-bound only), mtls (certificate-bound only) or any (either)")
	fs.BoolVar(&f.allowBearer, "allow-bearer", false, "also accept unbound bearer tokens (only with --require any)")
	fs.BoolVar(&f.requireNonce, "require-nonce", false, "require a resource-server nonce in every DPoP proof (RFC 9449 §9)")
	fs.StringVar(&f.publicURL, "public-url", "", "externally visible base URL, for the DPoP htu; recommended behind a proxy (default: the listen address as http(s)://HOST:PORT, or with --trusted-proxy the scheme and host the proxy forwards; required when HOST is empty or unspecified)")
	fs.Var(&f.proxies, "trusted-proxy", "CIDR or address of a TLS-terminating proxy whose RFC 9440 Client-Cert and forwarded scheme and host are believed, repeatable")
	fs.StringVar(&f.forwardedHeaders, "forwarded-headers", trustedproxy.HeadersXForwarded.String(), "header family the --trusted-proxy sets for the scheme and host: x-forwarded (X-Forwarded-Proto/-Host), forwarded (RFC 7239) or none; requests carrying the other family are refused")
	f.tls.register(fs, "verify client certificates against these CAs (PEM) at the handshake when one is sent; default: request without verifying (RFC 8705 §6.2), as self-signed clients need")
	fs.StringVar(&f.redisURL, "redis", "", "share the DPoP replay cache through Redis, e.g. redis://host:6379/0 (default: in memory, one instance)")
	fs.IntVar(&f.replayCapacity, "replay-capacity", replaycache.DefaultCapacity, "entries of the in-memory DPoP replay cache (without --redis); when full of live entries, DPoP requests are refused with 503")
	fs.IntVar(&f.replayQuota, "replay-quota", replaycache.DefaultQuotaLimit, "replay-cache entries one DPoP key (one token's cnf.jkt) may create per 105 s; beyond it its proofs are refused")
	fs.Var(&f.scopes, "scope", "scope every request's token must carry, repeatable")
	fs.StringVar(&f.fallbackCA, "fallback-ca", "", "accept requests without a token that present a client certificate of this fallback CA (PEM; the first certificate signs the CRL)")
	fs.StringVar(&f.fallbackCRL, "fallback-crl", "", "the fallback CA's CRL URL, e.g. ISSUER/crl (required with --fallback-ca)")
	fs.DurationVar(&f.crlRefresh, "crl-refresh", fallback.DefaultCRLRefresh, "interval between fetches of --fallback-crl")
	fs.DurationVar(&f.crlGrace, "crl-grace", fallback.DefaultCRLGrace, "how long past its nextUpdate the last fetched CRL is still used")
	fs.IntVar(&f.tokenCache, "token-cache", serveDefaultTokenCache, "verified access tokens kept to skip their signature check on reuse; 0 checks every token's signature on every request")
	fs.BoolVar(&f.baseline, "baseline", false, "also serve GET /baseline without any check (an unprotected handler, to measure what protection costs)")
	fs.StringVar(&f.cpuProfile, "cpu-profile", "", "write a CPU profile of the run to this file (for go tool pprof), until shutdown")
	f.conn.register(fs)
	f.log.register(fs)
	f.ops.register(fs)
	f.shared.register(fs)
}

// serveResourceConfig is what serve-resource's flags resolve to before it
// listens: the verifier configuration, lacking only the public URL when
// it is derived from the port bound and the DPoP settings, and what the
// run serves besides.
type serveResourceConfig struct {
	listenHost string
	logger     *slog.Logger
	ops        *serveOps
	tlsConfig  *tls.Config // nil: plain HTTP
	// roots and httpClient come from --ca-file; nil means the system's.
	roots      *x509.CertPool
	httpClient *http.Client
	keys       *resource.RemoteKeySet
	cfg        resource.Config
	policy     resource.Policy
	// derivePublic says the public URL is the listen address with the
	// port actually bound.
	derivePublic bool
	nonceSecrets [][]byte
	// redisPassword is the --redis password from its file or the
	// environment; redisPasswordInURL says the URL carries one instead.
	redisPassword      string
	redisPasswordInURL bool
}

// config checks the flags, their combinations and then the files they
// name, in that order, and returns what they describe. Usage problems
// return errUsage after a one-line message.
func (f *serveResourceFlags) config(e *env, cmd string) (*serveResourceConfig, error) {
	if err := f.checkSizes(e, cmd); err != nil {
		return nil, err
	}
	if f.addr == "" {
		return nil, serveUsagef(e, cmd, "--addr is required")
	}
	listenHost, logger, err := serveCheckListener(e, cmd, f.addr, &f.tls, &f.conn, &f.ops, &f.log)
	if err != nil {
		return nil, err
	}
	c := &serveResourceConfig{listenHost: listenHost, logger: logger, ops: newServeOps(logger)}
	if c.policy, err = f.checkTokens(e, cmd); err != nil {
		return nil, err
	}
	headers, err := trustedproxy.ParseHeaders(f.forwardedHeaders)
	if err != nil {
		return nil, serveUsagef(e, cmd, "--forwarded-headers must be x-forwarded, forwarded or none")
	}
	var trusted *trustedproxy.Set
	if len(f.proxies) > 0 {
		if trusted, err = trustedproxy.New(trustedproxy.Config{Peers: f.proxies, Headers: headers}); err != nil {
			return nil, serveUsagef(e, cmd, "--trusted-proxy: %v", err)
		}
	} else if f.forwardedHeadersSet {
		return nil, serveUsagef(e, cmd, "--forwarded-headers needs --trusted-proxy")
	}
	if trusted != nil && headers == trustedproxy.HeadersNone && f.publicURL == "" && c.policy.Accept != resource.AcceptMTLS {
		return nil, serveUsagef(e, cmd, "--forwarded-headers none needs --public-url, the URL clients use, checked against each DPoP proof")
	}
	// The nonce label is the public URL, or the audience behind a proxy;
	// only a derived public URL differs between instances.
	if c.nonceSecrets, err = f.shared.nonceSecrets(e, cmd, f.requireNonce, f.publicURL != "" || len(f.proxies) > 0, "--public-url, the URL clients use"); err != nil {
		return nil, err
	}
	if c.redisPassword, c.redisPasswordInURL, err = f.shared.redisPassword(e, cmd, f.redisURL); err != nil {
		return nil, err
	}
	intro, err := f.introspection(e, cmd)
	if err != nil {
		return nil, err
	}
	if !f.tls.enabled() && len(f.proxies) == 0 {
		if !isLoopbackAddr(listenHost) {
			return nil, serveUsagef(e, cmd, "without --tls-cert, serve-resource listens only on loopback, or behind a --trusted-proxy%s", serveNameHint(listenHost))
		}
		if c.policy.Accept == resource.AcceptMTLS {
			return nil, serveUsagef(e, cmd, "--require mtls needs --tls-cert or a --trusted-proxy that forwards Client-Cert")
		}
	}

	// Files.
	if err := c.loadFiles(f); err != nil {
		return nil, err
	}
	rm := newOpsResourceMetrics(c.ops)
	ksCfg := resource.RemoteKeySetConfig{HTTPClient: c.httpClient, Metrics: rm}
	if f.jwksURL != "" {
		ksCfg.JWKSURL = f.jwksURL
	} else {
		ksCfg.Issuer = f.issuerID
	}
	if c.keys, err = resource.NewRemoteKeySet(ksCfg); err != nil {
		return nil, err
	}

	// The DPoP htu is checked against the URL clients use: --public-url,
	// else the address actually bound, never the Host header a client sends.
	c.derivePublic = f.publicURL == "" && len(f.proxies) == 0 && c.policy.Accept != resource.AcceptMTLS
	if ip := net.ParseIP(listenHost); c.derivePublic && (listenHost == "" || ip != nil && ip.IsUnspecified()) {
		return nil, serveUsagef(e, cmd, "--public-url is needed when listening on all interfaces: it is the URL clients use, checked against each DPoP proof")
	}
	if intro != nil {
		intro.HTTPClient = c.httpClient
	}
	c.cfg = resource.Config{
		Issuers:        []resource.Issuer{{Identifier: f.issuerID, Keys: c.keys, Introspection: intro}},
		Audience:       f.audience,
		Algorithms:     slices.Clone(serveAlgorithms),
		PublicURL:      f.publicURL,
		TrustedProxies: trusted,
		// Plain HTTP is served only on loopback (checked above) unless a
		// trusted proxy terminates TLS, whose requests count as TLS anyway.
		InsecureAllowDPoPOverHTTP: !f.tls.enabled() && isLoopbackAddr(listenHost),
		Logger:                    logger,
		TokenCacheSize:            serveTokenCacheSize(f.tokenCache),
		Metrics:                   rm,
	}
	return c, nil
}

// introspection checks --introspection-endpoint and
// --introspection-client, reads the client's secret and returns the
// introspection settings, or nil without the flags. resource.New checks
// the endpoint further (https unless on a loopback address).
func (f *serveResourceFlags) introspection(e *env, cmd string) (*resource.Introspection, error) {
	switch {
	case f.introspectionEndpoint == "" && f.introspectionClient == "":
		return nil, nil
	case f.introspectionEndpoint == "":
		return nil, serveUsagef(e, cmd, "--introspection-client needs --introspection-endpoint")
	case f.introspectionClient == "":
		return nil, serveUsagef(e, cmd, "--introspection-endpoint needs --introspection-client, this server's credentials there")
	case f.introspectionMax < 1:
		return nil, serveUsagef(e, cmd, "--introspection-max-concurrent must be at least 1 (there is no unlimited setting)")
	}
	if u, err := url.Parse(f.introspectionEndpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" {
		return nil, serveUsagef(e, cmd, "--introspection-endpoint must be an absolute http(s) URL")
	} else if u.Scheme == "http" && !isLoopbackAddr(u.Hostname()) {
		return nil, serveUsagef(e, cmd, "--introspection-endpoint must use https unless it is on a loopback address")
	}
	id, secret, src, err := serveClientSecret(e, cmd, "--introspection-client", f.introspectionClient)
	if err != nil {
		return nil, err
	}
	if src == secretFromArgs {
		fmt.Fprintf(e.stderr, "note: the secret of --introspection-client %q is on the command line, where other local users can read it; use %s:@FILE or %s\n", id, id, serveSecretEnv(id))
	}
	return &resource.Introspection{Endpoint: f.introspectionEndpoint, ClientID: id, Auth: resource.AuthClientSecretBasic, ClientSecret: secret,
		MaxConcurrent: f.introspectionMax}, nil
}

// checkSizes checks the replay store and token cache sizes and the
// fallback flags.
func (f *serveResourceFlags) checkSizes(e *env, cmd string) error {
	if f.replayCapacity < 1 || f.replayQuota < 1 {
		return serveUsagef(e, cmd, "--replay-capacity and --replay-quota must be at least 1")
	}
	if f.tokenCache < 0 {
		return serveUsagef(e, cmd, "--token-cache must not be negative")
	}
	if (f.fallbackCA == "") != (f.fallbackCRL == "") {
		return serveUsagef(e, cmd, "--fallback-ca and --fallback-crl go together")
	}
	if f.crlRefresh <= 0 || f.crlGrace <= 0 {
		return serveUsagef(e, cmd, "--crl-refresh and --crl-grace must be positive")
	}
	if f.fallbackCRL != "" {
		if u, err := url.Parse(f.fallbackCRL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return serveUsagef(e, cmd, "--fallback-crl must be an absolute http(s) URL")
		}
	}
	return nil
}

// checkTokens checks the issuer, key set and public URLs, the audience,
// the binding flags and the scopes, and returns the policy they describe
// (without Scopes and Fallback, which the caller adds).
func (f *serveResourceFlags) checkTokens(e *env, cmd string) (resource.Policy, error) {
	var policy resource.Policy
	switch {
	case f.issuerID == "" && f.jwksURL != "":
		return policy, serveUsagef(e, cmd, "--jwks needs --issuer, the identifier that tokens' iss must equal")
	case f.issuerID == "":
		return policy, serveUsagef(e, cmd, "--issuer is required")
	}
	for _, u := range []struct{ name, value string }{{"--issuer", f.issuerID}, {"--jwks", f.jwksURL}, {"--public-url", f.publicURL}} {
		if u.value == "" {
			continue
		}
		if p, err := url.Parse(u.value); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || strings.ContainsAny(u.value, "?#") {
			return policy, serveUsagef(e, cmd, "%s must be an absolute http(s) URL without query or fragment", u.name)
		}
	}
	if f.audience == "" {
		return policy, serveUsagef(e, cmd, "--audience must not be empty")
	}
	switch f.require {
	case "any":
		policy.Accept = resource.AcceptBound
		if f.allowBearer {
			policy.Accept = resource.AcceptAny
		}
	case "dpop":
		policy.Accept = resource.AcceptDPoP
	case "mtls":
		policy.Accept = resource.AcceptMTLS
	default:
		return policy, serveUsagef(e, cmd, "--require must be dpop, mtls or any")
	}
	if f.allowBearer && f.require != "any" {
		return policy, serveUsagef(e, cmd, "--allow-bearer needs --require any")
	}
	if f.requireNonce && policy.Accept == resource.AcceptMTLS {
		return policy, serveUsagef(e, cmd, "--require-nonce needs DPoP, which --require mtls turns off")
	}
	for _, s := range f.scopes {
		if s == "" || strings.ContainsAny(s, " \t\"\\") {
			return policy, serveUsagef(e, cmd, "--scope %q is not a scope token", s)
		}
	}
	return policy, nil
}

// loadFiles reads the server certificate and client CAs (--tls-cert,
// --tls-key, --client-ca) and the CAs of --ca-file.
func (c *serveResourceConfig) loadFiles(f *serveResourceFlags) error {
	if f.tls.enabled() {
		cert, err := serveLoadTLS(f.tls.cert, f.tls.key)
		if err != nil {
			return err
		}
		c.tlsConfig = mtlsbound.ServerTLSConfig(cert)
		if f.tls.clientCA != "" {
			pool, err := serveLoadPool("--client-ca", f.tls.clientCA)
			if err != nil {
				return err
			}
			c.tlsConfig.ClientCAs = pool
			c.tlsConfig.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	if f.caFile != "" {
		roots, err := serveLoadPool("--ca-file", f.caFile)
		if err != nil {
			return err
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		c.roots, c.httpClient = roots, &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	return nil
}

// runServeResource implements "serve-resource".
func runServeResource(ctx context.Context, e *env, args []string) error {
	const cmd = "serve-resource"
	var f serveResourceFlags
	fs := newFlags(e, cmd, serveResourceSynopsis)
	f.register(fs)
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	f.forwardedHeadersSet = serveFlagSet(fs, "forwarded-headers")
	c, err := f.config(e, cmd)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return err
	}
	closeLn := true
	defer func() {
		if closeLn {
			ln.Close()
		}
	}()
	if c.derivePublic {
		scheme := "http"
		if f.tls.enabled() {
			scheme = "https"
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		c.cfg.PublicURL = scheme + "://" + net.JoinHostPort(c.listenHost, port)
	}
	if c.policy.Accept != resource.AcceptMTLS {
		dc, closeStore, err := c.dpopConfig(ctx, e, &f)
		if err != nil {
			return err
		}
		defer closeStore()
		c.cfg.DPoP = dc
	} else if f.redisURL != "" {
		fmt.Fprintln(e.stderr, "note: --redis is unused with --require mtls (no DPoP proofs to remember)")
	}
	if f.fallbackCA != "" {
		fv, closeFetcher, err := serveFallbackVerifier(ctx, e, serveFallbackParams{
			caFile: f.fallbackCA, crlURL: f.fallbackCRL, refresh: f.crlRefresh, grace: f.crlGrace,
			client: c.httpClient, dpop: c.cfg.DPoP, ops: c.ops,
		})
		if err != nil {
			return err
		}
		defer closeFetcher()
		c.cfg.Fallback = fv
		c.policy.Fallback = true
	}
	mux, err := c.handler(&f)
	if err != nil {
		return err
	}
	if f.cpuProfile != "" {
		stop, err := serveStartCPUProfile(f.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	c.ops.addCheck("keys", opsKeysCheck(c.keys))
	defer serveStartupKeys(ctx, e, c.keys, cmp.Or(f.jwksURL, "the metadata of "+f.issuerID), resource.DefaultMinRefreshInterval)()
	h, stopOps, err := c.ops.start(ctx, e, f.ops, c.listenHost, mux)
	if err != nil {
		return err
	}
	defer stopOps()
	closeLn = false // serveListener owns it
	return serveListener(ctx, e, ln, c.tlsConfig, h, f.conn)
}

// dpopConfig returns the DPoP settings: the replay store (shared through
// --redis, else in memory) and, with --require-nonce, the nonces labelled
// with the public URL (the audience behind a proxy). The returned
// function closes the Redis connection.
func (c *serveResourceConfig) dpopConfig(ctx context.Context, e *env, f *serveResourceFlags) (*resource.DPoPConfig, func(), error) {
	dc := &resource.DPoPConfig{Algorithms: slices.Clone(serveAlgorithms), KeyQuota: replaycache.QuotaConfig{Limit: f.replayQuota}}
	closeStore := func() {}
	if f.redisURL != "" {
		restore := opsQuietRedis(c.logger)
		store, rdb, err := serveRedisStore(ctx, f.redisURL, c.roots, c.redisPassword)
		if err != nil {
			restore()
			return nil, nil, err
		}
		if c.redisPasswordInURL {
			serveRedisPasswordNote(e)
		}
		dc.ReplayStore, closeStore = store, func() { rdb.Close(); restore() }
		c.ops.addCheck("replay_store", opsRedisCheck(rdb))
	} else {
		lru, err := replaycache.NewLRU(replaycache.Config{Capacity: f.replayCapacity})
		if err != nil {
			return nil, nil, err
		}
		dc.ReplayStore = lru
	}
	if f.requireNonce {
		label := cmp.Or(c.cfg.PublicURL, f.audience)
		n, err := serveNonces(label, c.nonceSecrets)
		if err != nil {
			closeStore()
			return nil, nil, err
		}
		dc.Nonces = n
	}
	return dc, closeStore, nil
}

// handler builds the verifier and serves the metadata, the protected
// resource and, with --baseline, the unprotected one.
func (c *serveResourceConfig) handler(f *serveResourceFlags) (http.Handler, error) {
	v, err := resource.New(c.cfg)
	if err != nil {
		return nil, err
	}
	policy := c.policy
	if err := v.ValidatePolicy(policy); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(resource.MetadataPath, v.MetadataHandler(policy, slices.Clone(f.scopes)))
	protected := v.Middleware(resource.Policy{Accept: policy.Accept, Scopes: slices.Clone(f.scopes), Fallback: policy.Fallback})(http.HandlerFunc(serveResourceAnswer))
	mux.Handle("GET /resource", protected)
	mux.Handle("POST /resource", protected)
	if f.baseline {
		mux.HandleFunc("GET /baseline", serveBaselineAnswer)
	}
	return mux, nil
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
