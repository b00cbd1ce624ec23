package issuer

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"fmt"
	"slices"
	"sync"

	"github.com/go-jose/go-jose/v4"

	"github.com/senderbound/senderbound/mtlsbound"
)

// AuthMethod is a token endpoint client authentication method name as
// registered in the OAuth Token Endpoint Authentication Methods registry.
type AuthMethod string

// Client authentication methods.
const (
	// AuthNone is a public client: it sends only client_id.
	AuthNone AuthMethod = "none"
	// AuthSecretBasic is HTTP Basic with client_id and secret (RFC 6749 §2.3.1).
	AuthSecretBasic AuthMethod = "client_secret_basic"
	// AuthSecretPost is client_id and client_secret in the form body.
	AuthSecretPost AuthMethod = "client_secret_post"
	// AuthTLSClient is PKI mutual-TLS authentication (RFC 8705 §2.1).
	AuthTLSClient AuthMethod = "tls_client_auth"
	// AuthSelfSignedTLSClient is self-signed certificate mutual-TLS
	// authentication (RFC 8705 §2.2).
	AuthSelfSignedTLSClient AuthMethod = "self_signed_tls_client_auth"
)

// Client is a registered client. A client authenticates with exactly the
// method it is registered for; any other method is refused (MTLS-CA-16).
type Client struct {
	// ID is the client_id. Required.
	ID string
	// AuthMethod is the one authentication method the client may use.
	// Required.
	AuthMethod AuthMethod
	// SecretHash is HashSecret(secret) for the client_secret_* methods.
	// Secrets must be high-entropy random strings (at least 128 bits):
	// the hash is a single SHA-256, not a password hash.
	SecretHash []byte
	// Certificate authenticates the client certificate for
	// tls_client_auth (for example an mtlsbound.PKIAuth with the trust
	// anchors and the one registered subject selector) and
	// self_signed_tls_client_auth (for example
	// SelfSigned(mtlsbound.SelfSignedAuth{…}.Authenticate)). Required for
	// those methods, unused otherwise.
	Certificate CertificateAuthenticator
	// JWKS holds the public keys that sign the client's private_key_jwt
	// assertions. Required for that method, unused otherwise. Each key must
	// be ECDSA on P-256, P-384 or P-521, Ed25519 canonically encoded and
	// not of small order, or RSA of 2048 to 4096 bits with an odd exponent
	// of at most 65537; a key that is not is refused at registration and
	// never verifies an assertion.
	JWKS *jose.JSONWebKeySet
	// JWKSURI is the client's jwks_uri (RFC 7591 §2): an https URL where
	// the client publishes its key set, the alternative to an inline key
	// set for private_key_jwt (instead of JWKS) and
	// self_signed_tls_client_auth (instead of Certificate: the first x5c
	// certificate of each key is registered, MTLS-CA-11). Rotating a key
	// or certificate then needs no change at the issuer. The server
	// fetches, caches and refreshes the set as [ClientJWKSConfig]
	// describes; every key must meet the rules given for JWKS, or the
	// whole set is refused. Exactly one of the inline credential and
	// JWKSURI is set for those two methods; JWKSURI is unused otherwise.
	JWKSURI string
	// Scopes lists the scopes the client may request. A request without
	// scope is given all of them; a scope outside the list is invalid_scope.
	// A refresh token yields only the scopes of its grant still listed
	// here when it is used.
	Scopes []string
	// Audiences lists the resource indicators (RFC 8707 "resource") the
	// client may request; the first is its default audience. If empty, the
	// issuer's default audience is used and any "resource" is invalid_target.
	// A refresh token yields only the audiences of its grant still listed
	// here (or the issuer's default audience when the list is empty).
	Audiences []string
	// GrantTypes lists the grant types the client may use. If empty:
	// client_credentials and refresh_token for confidential clients,
	// refresh_token and every extension grant for public clients.
	GrantTypes []string
	// DPoPBoundAccessTokens (RFC 9449 §5.2 dpop_bound_access_tokens)
	// requires a DPoP proof on every token request: the client never gets
	// an unbound or certificate-bound token.
	DPoPBoundAccessTokens bool
	// TLSClientCertificateBoundAccessTokens requires a client certificate
	// on every token request and binds every token to it: the client never
	// gets an unbound or a DPoP-bound token (a request carrying a DPoP
	// proof is refused with invalid_request).
	TLSClientCertificateBoundAccessTokens bool
	// Introspect allows the client to call the introspection endpoint. It
	// sees only the tokens issued to it (client_id) and the access tokens
	// whose audience includes one of its Audiences; any other token is
	// answered {"active":false}, as RFC 7662 §2.2 allows, so that one
	// client cannot read another client's subject, scope and cnf.
	Introspect bool
	// IntrospectAll widens Introspect to every access token this issuer
	// minted, whatever client it was issued to and whatever its audience;
	// refresh tokens stay visible only to their own client. Give it only to
	// a resource server that must check tokens of every audience; it
	// requires Introspect.
	IntrospectAll bool
}

// Public reports whether c is a public client (AuthNone).
func (c *Client) Public() bool { return c.AuthMethod == AuthNone }

// mayIntrospect reports whether c may learn the claims of an access token
// issued to clientID for aud (see Client.Introspect).
func (c *Client) mayIntrospect(clientID string, aud []string) bool {
	if c.IntrospectAll || clientID == c.ID {
		return true
	}
	return slices.ContainsFunc(c.Audiences, func(a string) bool { return slices.Contains(aud, a) })
}

func (c *Client) validate() error {
	if c.ID == "" {
		return fmt.Errorf("%w: client without ID", ErrInvalidConfig)
	}
	switch c.AuthMethod {
	case AuthNone:
		if c.Introspect {
			return fmt.Errorf("%w: public client %q cannot introspect", ErrInvalidConfig, c.ID)
		}
	case AuthSecretBasic, AuthSecretPost:
		if len(c.SecretHash) != sha256.Size {
			return fmt.Errorf("%w: client %q needs a SecretHash", ErrInvalidConfig, c.ID)
		}
	case AuthTLSClient, AuthSelfSignedTLSClient:
		if c.AuthMethod == AuthSelfSignedTLSClient && c.JWKSURI != "" {
			if c.Certificate != nil {
				return fmt.Errorf("%w: client %q has both a Certificate authenticator and a JWKSURI", ErrInvalidConfig, c.ID)
			}
			if err := validateJWKSURI(c.JWKSURI); err != nil {
				return fmt.Errorf("%w: client %q: %w", ErrInvalidConfig, c.ID, err)
			}
			break
		}
		if c.Certificate == nil {
			return fmt.Errorf("%w: client %q needs a Certificate authenticator", ErrInvalidConfig, c.ID)
		}
		if v, ok := c.Certificate.(interface{ Validate() error }); ok {
			if err := v.Validate(); err != nil {
				return fmt.Errorf("%w: client %q: %w", ErrInvalidConfig, c.ID, err)
			}
		}
	case AuthPrivateKeyJWT:
		if c.JWKSURI != "" {
			if c.JWKS != nil {
				return fmt.Errorf("%w: client %q has both a JWKS and a JWKSURI", ErrInvalidConfig, c.ID)
			}
			if err := validateJWKSURI(c.JWKSURI); err != nil {
				return fmt.Errorf("%w: client %q: %w", ErrInvalidConfig, c.ID, err)
			}
			break
		}
		if err := validateClientJWKS(c); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: client %q has an unknown authentication method", ErrInvalidConfig, c.ID)
	}
	if c.JWKS != nil && c.AuthMethod != AuthPrivateKeyJWT {
		return fmt.Errorf("%w: client %q has a JWKS but does not use it", ErrInvalidConfig, c.ID)
	}
	if c.JWKSURI != "" && c.AuthMethod != AuthPrivateKeyJWT && c.AuthMethod != AuthSelfSignedTLSClient {
		return fmt.Errorf("%w: client %q has a JWKSURI but does not use it", ErrInvalidConfig, c.ID)
	}
	if c.Certificate != nil && c.AuthMethod != AuthTLSClient && c.AuthMethod != AuthSelfSignedTLSClient {
		return fmt.Errorf("%w: client %q has a certificate authenticator but does not use it", ErrInvalidConfig, c.ID)
	}
	if c.SecretHash != nil && c.AuthMethod != AuthSecretBasic && c.AuthMethod != AuthSecretPost {
		return fmt.Errorf("%w: client %q has a secret but does not use it", ErrInvalidConfig, c.ID)
	}
	if c.IntrospectAll && !c.Introspect {
		return fmt.Errorf("%w: client %q has IntrospectAll without Introspect", ErrInvalidConfig, c.ID)
	}
	if c.DPoPBoundAccessTokens && c.TLSClientCertificateBoundAccessTokens {
		return fmt.Errorf("%w: client %q cannot require both DPoP and certificate-bound tokens", ErrInvalidConfig, c.ID)
	}
	return nil
}

func (c *Client) allowsGrant(gt string) bool {
	if len(c.GrantTypes) > 0 {
		return slices.Contains(c.GrantTypes, gt)
	}
	if c.Public() {
		return gt != GrantClientCredentials
	}
	return gt == GrantClientCredentials || gt == GrantRefreshToken
}

// CertificateAuthenticator decides whether a client certificate
// authenticates a registered client (RFC 8705 §2). cert's possession was
// proven in the TLS handshake (or by a trusted TLS-terminating proxy);
// chain holds the other certificates the client sent, nil when unknown.
// It returns nil on success and any error otherwise; the token endpoint
// answers invalid_client without the error's text. mtlsbound.PKIAuth
// implements it; use [SelfSigned] for mtlsbound.SelfSignedAuth.
// Implementations must be safe for concurrent use.
type CertificateAuthenticator interface {
	Authenticate(ctx context.Context, cert *x509.Certificate, chain []*x509.Certificate) error
}

var _ CertificateAuthenticator = mtlsbound.PKIAuth{}

// SelfSigned adapts a check that needs no chain, such as the Authenticate
// method of mtlsbound.SelfSignedAuth, to [CertificateAuthenticator].
func SelfSigned(check func(ctx context.Context, cert *x509.Certificate) error) CertificateAuthenticator {
	return selfSigned(check)
}

type selfSigned func(ctx context.Context, cert *x509.Certificate) error

func (f selfSigned) Authenticate(ctx context.Context, cert *x509.Certificate, _ []*x509.Certificate) error {
	return f(ctx, cert)
}

// HashSecret returns the value to store in Client.SecretHash for secret:
// its SHA-256. Use it only for high-entropy generated secrets.
func HashSecret(secret string) []byte {
	s := sha256.Sum256([]byte(secret))
	return s[:]
}

func secretMatches(c *Client, secret string) bool {
	s := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(s[:], c.SecretHash) == 1
}

// ClientRegistry finds registered clients. Implementations must be safe for
// concurrent use.
type ClientRegistry interface {
	// Client returns the client registered as id, or an error wrapping
	// [ErrUnknownClient]. Any other error means the registry could not
	// answer; the request is refused with temporarily_unavailable.
	Client(ctx context.Context, id string) (*Client, error)
}

// MemoryRegistry is an in-memory [ClientRegistry], safe for concurrent use.
type MemoryRegistry struct {
	mu      sync.RWMutex
	clients map[string]*Client
}

var _ ClientRegistry = (*MemoryRegistry)(nil)

// NewMemoryRegistry returns a registry holding clients; each is validated.
func NewMemoryRegistry(clients ...Client) (*MemoryRegistry, error) {
	r := &MemoryRegistry{clients: map[string]*Client{}}
	for _, c := range clients {
		if err := r.Register(c); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Register validates c and adds it, replacing a client with the same ID.
// The registry keeps its own copy.
func (r *MemoryRegistry) Register(c Client) error {
	if err := c.validate(); err != nil {
		return err
	}
	c.SecretHash = slices.Clone(c.SecretHash)
	c.Scopes = slices.Clone(c.Scopes)
	c.Audiences = slices.Clone(c.Audiences)
	c.GrantTypes = slices.Clone(c.GrantTypes)
	r.mu.Lock()
	r.clients[c.ID] = &c
	r.mu.Unlock()
	return nil
}

// Client implements [ClientRegistry]. The returned Client must not be
// modified.
func (r *MemoryRegistry) Client(_ context.Context, id string) (*Client, error) {
	r.mu.RLock()
	c, ok := r.clients[id]
	r.mu.RUnlock()
	if !ok {
		return nil, ErrUnknownClient
	}
	return c, nil
}
