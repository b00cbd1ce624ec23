package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/keyfile"
	"github.com/senderbound/senderbound/issuer/redisrefresh"
	"github.com/senderbound/senderbound/replaycache/redisstore"
)

// Secrets shared by the instances of one server: the DPoP nonce secret and
// the Redis password, read from a file or the environment so that they
// never have to appear in the process table.
const (
	// serveNonceSecretEnv holds the nonce secret(s) when
	// --nonce-secret-file is not given.
	serveNonceSecretEnv = "SENDERBOUND_NONCE_SECRET"
	// serveRedisPasswordEnv holds the Redis password when
	// --redis-password-file is not given and the --redis URL has none.
	serveRedisPasswordEnv = "SENDERBOUND_REDIS_PASSWORD"
	// serveMinNonceSecretLen is the shortest nonce secret accepted: an
	// HMAC-SHA-256 key of at least 256 bits, as dpop.NonceConfig requires.
	serveMinNonceSecretLen = 32
	// serveMinRedisPasswordLen is the shortest Redis password accepted
	// from a file or the environment.
	serveMinRedisPasswordLen = 16
)

// serveNonceSecretHelp ends both servers' help text.
const serveNonceSecretHelp = `

A nonce secret file holds one secret of at least 32 characters per line (for
example the output of: openssl rand -base64 32); the first signs new nonces,
every line verifies. To rotate, add the new secret as the first line at every
instance, then remove the old line after 5 minutes (the nonce lifetime).
Each nonce is bound to its server's URL (the issuer identifier, the resource's
public URL), so one server's nonces are refused by the other even with the
same secret (RFC 9449 §9).`

// serveReadSecretFile reads a secret file: a regular file readable and
// writable by its owner only (keyfile.ReadPrivate), whose content is the
// secret without one trailing newline (LF or CRLF). No error includes the
// content.
func serveReadSecretFile(path string) (string, error) {
	data, err := keyfile.ReadPrivate(path)
	if err != nil {
		return "", err
	}
	secret := string(data)
	if t, ok := strings.CutSuffix(secret, "\n"); ok {
		secret = strings.TrimSuffix(t, "\r")
	}
	return secret, nil
}

// serveSecretProblem returns what is wrong with secret, or "" when it has
// at least minLen characters and is one line of printable characters. The
// description never includes the secret.
func serveSecretProblem(secret string, minLen int) string {
	if len(secret) < minLen {
		return fmt.Sprintf("must have at least %d characters", minLen)
	}
	for _, c := range []byte(secret) {
		if c < 0x20 || c == 0x7f {
			return "must be one line of printable characters"
		}
	}
	return ""
}

// serveSharedFlags are the flags both servers have for running several
// instances: the nonce secret file and the Redis password file.
type serveSharedFlags struct {
	nonceSecretFile   string
	redisPasswordFile string
}

// register defines the flags on fs.
func (f *serveSharedFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.nonceSecretFile, "nonce-secret-file", "", "with --require-nonce: read the DPoP nonce secret from this file (readable by its owner only; one secret of at least 32 characters per line, the first signs, all verify), so that instances sharing it accept each other's nonces (default: $"+serveNonceSecretEnv+", else a random secret for this process only)")
	fs.StringVar(&f.redisPasswordFile, "redis-password-file", "", "read the --redis password from this file (readable by its owner only), instead of putting it in the URL (default: $"+serveRedisPasswordEnv+")")
}

// nonceSecrets returns the shared nonce secrets from --nonce-secret-file or
// serveNonceSecretEnv, or nil when neither is given (each process then
// makes its own). required says whether nonces are in use; a file given
// without them is a usage error, the environment variable is then
// ignored. labelShared says whether the nonce label is the same at every
// instance; it is not when the listen address decides it, and a shared
// secret is then a usage error that names fix.
func (f *serveSharedFlags) nonceSecrets(e *env, cmd string, required, labelShared bool, fix string) ([][]byte, error) {
	var raw, source string
	switch {
	case f.nonceSecretFile != "":
		if !required {
			return nil, serveUsagef(e, cmd, "--nonce-secret-file needs --require-nonce")
		}
		s, err := serveReadSecretFile(f.nonceSecretFile)
		if err != nil {
			return nil, fmt.Errorf("--nonce-secret-file: %w", err)
		}
		raw, source = s, "--nonce-secret-file"
	default:
		v, ok := e.getenv(serveNonceSecretEnv)
		if !ok || !required {
			return nil, nil
		}
		raw, source = strings.TrimSuffix(strings.TrimSuffix(v, "\n"), "\r"), serveNonceSecretEnv
	}
	var secrets [][]byte
	for i, line := range strings.Split(raw, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if p := serveSecretProblem(line, serveMinNonceSecretLen); p != "" {
			return nil, serveUsagef(e, cmd, "%s: nonce secret %d %s", source, i+1, p)
		}
		secrets = append(secrets, []byte(line))
	}
	if !labelShared {
		return nil, serveUsagef(e, cmd, "a shared nonce secret (%s) needs %s: instances accept each other's nonces only under the same URL", source, fix)
	}
	return secrets, nil
}

// redisPassword returns the password for the Redis at rawURL from
// --redis-password-file or serveRedisPasswordEnv ("" when neither is
// given), and whether the URL itself carries one (to be warned about). A
// URL with a password and another source is a usage error.
func (f *serveSharedFlags) redisPassword(e *env, cmd, rawURL string) (password string, inURL bool, err error) {
	if rawURL == "" {
		if f.redisPasswordFile != "" {
			return "", false, serveUsagef(e, cmd, "--redis-password-file needs --redis")
		}
		return "", false, nil
	}
	if u, err := url.Parse(rawURL); err == nil && u.User != nil {
		_, inURL = u.User.Password()
	}
	var source string
	switch {
	case f.redisPasswordFile != "":
		if password, err = serveReadSecretFile(f.redisPasswordFile); err != nil {
			return "", false, fmt.Errorf("--redis-password-file: %w", err)
		}
		source = "--redis-password-file"
	default:
		v, ok := e.getenv(serveRedisPasswordEnv)
		if !ok || v == "" {
			return "", inURL, nil
		}
		password, source = v, serveRedisPasswordEnv
	}
	if inURL {
		return "", false, serveUsagef(e, cmd, "the --redis URL has a password and %s gives another; give it once", source)
	}
	if p := serveSecretProblem(password, serveMinRedisPasswordLen); p != "" {
		return "", false, serveUsagef(e, cmd, "%s: the Redis password %s", source, p)
	}
	return password, false, nil
}

// serveRedisPasswordNote is printed when the --redis URL carries a password.
func serveRedisPasswordNote(e *env) {
	fmt.Fprintf(e.stderr, "note: the Redis password is in the --redis URL on the command line, where other local users can read it; use --redis-password-file or %s\n", serveRedisPasswordEnv)
}

// serveNonces returns a DPoP nonce source labelled label: with secrets, the
// shared ones (every instance with the same secrets and label accepts the
// others' nonces); without, a fresh random secret, so that nonces are
// valid only at this process and only until it exits.
func serveNonces(label string, secrets [][]byte) (*dpop.Nonces, error) {
	if len(secrets) == 0 {
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		secrets = [][]byte{secret}
	}
	return dpop.NewNonces(dpop.NonceConfig{Secrets: secrets, Label: label})
}

// serveRedisClient connects to the Redis at rawURL, with password when it
// is not empty (the URL then has none), and checks it with PING. roots,
// when set, are the CAs trusted for a rediss:// URL. No error repeats the
// URL, which may hold a password.
func serveRedisClient(ctx context.Context, rawURL string, roots *x509.CertPool, password string) (*redis.Client, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			return nil, errors.New("--redis: invalid URL")
		}
		return nil, fmt.Errorf("--redis: %w", err)
	}
	if password != "" {
		opt.Password = password
	}
	if opt.TLSConfig != nil && roots != nil {
		opt.TLSConfig.RootCAs = roots
	}
	rdb := redis.NewClient(opt)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pingCtx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("--redis: %w", err)
	}
	return rdb, nil
}

// serveIssuerRedis returns the replay store and refresh-token store that
// the instances of issuer id share through rdb. Keys are prefixed with the
// issuer identifier, so that issuers sharing one Redis never see each
// other's refresh tokens or proofs.
// serveIssuerRedisAccessTokens returns the Redis store of the opaque
// access tokens of issuer id, under a prefix of its own (never the refresh
// tokens' one).
func serveIssuerRedisAccessTokens(rdb *redis.Client, id string) (*redisrefresh.Store, error) {
	return redisrefresh.New(rdb, redisrefresh.Config{Prefix: "senderbound:issuer:" + id + ":access:"})
}

func serveIssuerRedis(rdb *redis.Client, id string) (*redisstore.Store, *redisrefresh.Store, error) {
	replay, err := redisstore.New(rdb, redisstore.Config{Prefix: "senderbound:issuer:" + id + ":jti:"})
	if err != nil {
		return nil, nil, err
	}
	refresh, err := redisrefresh.New(rdb, redisrefresh.Config{Prefix: "senderbound:issuer:" + id + ":refresh:"})
	if err != nil {
		return nil, nil, err
	}
	return replay, refresh, nil
}
