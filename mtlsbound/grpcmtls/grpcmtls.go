package grpcmtls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/oauth2"
	"google.golang.org/grpc/credentials"
)

// TransportCredentials returns gRPC TLS credentials that present cert as
// the client certificate (the certificate the access tokens are bound to,
// CA-issued or self-signed, RFC 8705 §2) and trust roots for the server
// certificate (nil means the system roots), with TLS 1.2 as the minimum
// version. Use them with grpc.WithTransportCredentials.
func TransportCredentials(cert tls.Certificate, roots *x509.CertPool) credentials.TransportCredentials {
	return credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      roots,
		MinVersion:   tls.VersionTLS12,
	})
}

// Credentials is a credentials.PerRPCCredentials that sends a
// certificate-bound access token (RFC 8705 §3) with every call as
// "authorization: Bearer <token>". Use it with [TransportCredentials], so
// the connection presents the certificate the token is bound to.
//
// It refuses to send anything on a connection without privacy and
// integrity protection (RequireTransportSecurity is true, and each call's
// security level is checked), and refuses a token whose type is not
// Bearer (a DPoP-bound token sent under Bearer is refused by every
// resource server and would only expose it; use grpcdpop for those).
//
// The zero value is not usable: Source is required. Credentials is safe
// for concurrent use when Source is.
type Credentials struct {
	// Source supplies the access token for each call, for example an
	// oauth2.ReuseTokenSource over a client credentials config whose HTTP
	// client presents the same certificate (mtlsbound.NewClient).
	// Required.
	Source oauth2.TokenSource
}

var _ credentials.PerRPCCredentials = Credentials{}

// RequireTransportSecurity reports true: tokens are sent only over
// connections with privacy and integrity protection.
func (Credentials) RequireTransportSecurity() bool { return true }

// GetRequestMetadata returns the authorization metadata for one call. It
// fails on a connection without privacy and integrity protection, and when
// the token source fails or returns an invalid token or one whose type is
// not Bearer.
func (c Credentials) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	if c.Source == nil {
		return nil, errors.New("grpcmtls: Credentials needs a Source")
	}
	ri, _ := credentials.RequestInfoFromContext(ctx)
	if err := credentials.CheckSecurityLevel(ri.AuthInfo, credentials.PrivacyAndIntegrity); err != nil {
		return nil, errors.New("grpcmtls: refusing to send a token on a connection without transport security")
	}
	tok, err := c.Source.Token()
	if err != nil {
		return nil, fmt.Errorf("grpcmtls: cannot get an access token: %w", err)
	}
	if !tok.Valid() {
		return nil, errors.New("grpcmtls: the token source returned an invalid token")
	}
	if !strings.EqualFold(tok.Type(), "Bearer") {
		return nil, errors.New("grpcmtls: the access token is not of type Bearer")
	}
	return map[string]string{"authorization": "Bearer " + tok.AccessToken}, nil
}
