package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/net/netutil"

	"github.com/senderbound/senderbound/internal/keyfile"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/replaycache/redisstore"
)

// serveDefaultAudience is the audience serve-issuer puts in its tokens and
// serve-resource expects when --audience is not given, so that the two
// commands work together without configuration.
const serveDefaultAudience = "https://resource.senderbound.test"

// serveDefaultScopes are the scopes serve-issuer lets every client request
// when no --scope is given.
var serveDefaultScopes = []string{"read", "write"}

// serveAlgorithms are the JWS algorithms accepted for DPoP proofs and, at the
// resource server, for access tokens: every algorithm keygen can make a key for.
var serveAlgorithms = keyfile.Algorithms

// serveMinSecretLen is the shortest client secret serve-issuer accepts: the
// issuer stores a single SHA-256 of each secret, which is only safe for
// high-entropy generated secrets.
const serveMinSecretLen = 16

// serveListener serves h on ln (TLS when tlsConfig is non-nil), prints one
// line "listening on <URL>" once ready, and shuts down gracefully when ctx
// ends (SIGINT/SIGTERM in main). Servers open ln themselves because they
// must know their port before they can build their handler. It takes
// ownership of ln and closes it in every case.
//
// At most cf.maxConns connections are open at once (TLS handshakes
// included): a client beyond the limit waits in the listen queue until one
// closes. cf's timeouts bound how long a connection may hold its slot while
// sending its request headers or idling between requests.
func serveListener(ctx context.Context, e *env, ln net.Listener, tlsConfig *tls.Config, h http.Handler, cf serveConnFlags) error {
	ln = netutil.LimitListener(ln, cf.maxConns)
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
		ln = tls.NewListener(ln, tlsConfig)
	}
	srv := newHTTPServer(h)
	srv.TLSConfig = tlsConfig
	srv.ReadHeaderTimeout = cf.readHeaderTimeout
	srv.IdleTimeout = cf.idleTimeout
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(e.stdout, "listening on %s://%s\n", scheme, ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	fmt.Fprintln(e.stderr, "shut down")
	return nil
}

// newHTTPServer returns an http.Server with conservative limits: header
// size, read and idle timeouts.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// serveUsagef reports an invalid flag value or combination on one line and
// returns errUsage (exit status 2).
func serveUsagef(e *env, cmd, format string, args ...any) error {
	fmt.Fprintf(e.stderr, "senderbound %s: %s (run 'senderbound %s -h')\n", cmd, fmt.Sprintf(format, args...), cmd)
	return errUsage
}

// serveSplitPair splits "A:B" at the first colon; both parts must be
// non-empty.
func serveSplitPair(v string) (a, b string, ok bool) {
	a, b, ok = strings.Cut(v, ":")
	return a, b, ok && a != "" && b != ""
}

// isLoopbackAddr reports whether host (without port or brackets) is a
// loopback IP address: in 127.0.0.0/8 or ::1, also when written
// IPv4-mapped (::ffff:127.0.0.1) or with a zone (::1%lo), which name the
// same address. A name is not an address: "localhost" is resolved through
// the hosts file and DNS, which can point it elsewhere, so it never counts
// as loopback. Plain HTTP and credentials sent in clear are allowed only
// to, and listeners only on, an address that is loopback by itself, as
// RFC 8252 §8.3 advises for loopback redirect URIs.
func isLoopbackAddr(host string) bool {
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// serveNameHint explains, after a refusal for a listen host that is not
// loopback, that a name is never taken for a loopback address; it is
// empty when host is an address.
func serveNameHint(host string) string {
	if _, err := netip.ParseAddr(host); err == nil || host == "" {
		return ""
	}
	return " (--addr must give a loopback address such as 127.0.0.1 or [::1]: a name, even localhost, can resolve elsewhere)"
}

// serveAddrHost returns the host part of a listen address, or an error for
// an address that is not HOST:PORT.
func serveAddrHost(addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	return host, err
}

// serveLoadTLS loads the server certificate and key given by --tls-cert and
// --tls-key.
func serveLoadTLS(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("--tls-cert %s / --tls-key %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

// serveLoadPool reads the PEM certificates of file into a new pool.
func serveLoadPool(flagName, file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	list, err := certs.ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flagName, file, err)
	}
	pool := x509.NewCertPool()
	for _, c := range list {
		pool.AddCert(c)
	}
	return pool, nil
}

// serveTLSFlags are the --tls-cert, --tls-key and --client-ca flags shared by
// both servers.
type serveTLSFlags struct {
	cert, key, clientCA string
}

// register defines the flags on fs; clientCAUsage says what --client-ca
// means for this server.
func (f *serveTLSFlags) register(fs *flag.FlagSet, clientCAUsage string) {
	fs.StringVar(&f.cert, "tls-cert", "", "serve HTTPS with this certificate (PEM, leaf first); needs --tls-key")
	fs.StringVar(&f.key, "tls-key", "", "private key (PEM) of --tls-cert")
	fs.StringVar(&f.clientCA, "client-ca", "", clientCAUsage)
}

// check rejects --tls-key without --tls-cert and the like.
func (f *serveTLSFlags) check(e *env, cmd string) error {
	switch {
	case f.cert != "" && f.key == "":
		return serveUsagef(e, cmd, "--tls-cert requires --tls-key")
	case f.key != "" && f.cert == "":
		return serveUsagef(e, cmd, "--tls-key requires --tls-cert")
	case f.clientCA != "" && f.cert == "":
		return serveUsagef(e, cmd, "--client-ca requires --tls-cert and --tls-key")
	}
	return nil
}

// enabled reports whether the server listens with TLS.
func (f *serveTLSFlags) enabled() bool { return f.cert != "" }

// Connection limits of both servers.
const (
	serveDefaultMaxConns          = 1024
	serveDefaultIdleTimeout       = 60 * time.Second
	serveDefaultReadHeaderTimeout = 10 * time.Second
)

// serveConnFlags are the --max-connections, --idle-timeout and
// --read-header-timeout flags shared by both servers.
type serveConnFlags struct {
	maxConns                       int
	idleTimeout, readHeaderTimeout time.Duration
}

// register defines the flags on fs.
func (f *serveConnFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&f.maxConns, "max-connections", serveDefaultMaxConns, "most connections open at once, idle keep-alive ones included; more wait to be accepted")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", serveDefaultIdleTimeout, "close a keep-alive connection idle this long, 1s to 1h")
	fs.DurationVar(&f.readHeaderTimeout, "read-header-timeout", serveDefaultReadHeaderTimeout, "close a connection whose TLS handshake and request headers take longer, 1s to 5m")
}

// check rejects values outside the documented ranges.
func (f *serveConnFlags) check(e *env, cmd string) error {
	switch {
	case f.maxConns < 1:
		return serveUsagef(e, cmd, "--max-connections must be at least 1")
	case f.idleTimeout < time.Second || f.idleTimeout > time.Hour:
		return serveUsagef(e, cmd, "--idle-timeout must be between 1s and 1h")
	case f.readHeaderTimeout < time.Second || f.readHeaderTimeout > 5*time.Minute:
		return serveUsagef(e, cmd, "--read-header-timeout must be between 1s and 5m")
	}
	return nil
}

// serveLogFlags are the --log-level and --log-format flags shared by both
// servers.
type serveLogFlags struct {
	level  string
	format string
}

// register defines the flags on fs.
func (f *serveLogFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.level, "log-level", "info", "least level logged: debug (adds every refused request with its stable reason), info, warn or error")
	fs.StringVar(&f.format, "log-format", "text", "log record format on stderr: text or json")
}

// logger returns the structured logger the flags describe, writing to w,
// or a usage error for a value outside the documented sets.
func (f *serveLogFlags) logger(e *env, cmd string, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	switch strings.ToLower(f.level) {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, serveUsagef(e, cmd, "--log-level must be debug, info, warn or error")
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(f.format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, serveUsagef(e, cmd, "--log-format must be text or json")
}

// serveStartCPUProfile starts a CPU profile written to path and returns the
// function that stops it and closes the file.
func serveStartCPUProfile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// serveFlagSet reports whether the flag name was given on the command line.
func serveFlagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// serveRedisStore connects to the Redis at rawURL (checked with PING; with
// password when it is not empty) and returns a shared replay store and its
// client, which the caller closes. roots, when set, are the CAs trusted for
// a rediss:// URL.
func serveRedisStore(ctx context.Context, rawURL string, roots *x509.CertPool, password string) (*redisstore.Store, *redis.Client, error) {
	rdb, err := serveRedisClient(ctx, rawURL, roots, password)
	if err != nil {
		return nil, nil, err
	}
	store, err := redisstore.New(rdb, redisstore.Config{})
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	return store, rdb, nil
}

// serveCheckListener checks the flags both servers share, in the order
// both report them (--addr, TLS, connection limits, ops listener), and
// returns the listen host and the logger the log flags describe.
func serveCheckListener(e *env, cmd, addr string, tf *serveTLSFlags, cf *serveConnFlags, of *serveOpsFlags, lf *serveLogFlags) (string, *slog.Logger, error) {
	listenHost, err := serveAddrHost(addr)
	if err != nil {
		return "", nil, serveUsagef(e, cmd, "--addr must be HOST:PORT")
	}
	if err := tf.check(e, cmd); err != nil {
		return "", nil, err
	}
	if err := cf.check(e, cmd); err != nil {
		return "", nil, err
	}
	if err := of.check(e, cmd); err != nil {
		return "", nil, err
	}
	logger, err := lf.logger(e, cmd, e.stderr)
	if err != nil {
		return "", nil, err
	}
	return listenHost, logger, nil
}
