package issuer

import (
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"

	"github.com/senderbound/senderbound/fallback"
	"github.com/senderbound/senderbound/oautherr"
)

// Paths of the fallback certificate authority's endpoints, served when
// ServerConfig.Fallback is set.
const (
	CertificatePath = "/certificate"
	CRLPath         = "/crl"
)

// CertificateHandler returns the fallback certificate endpoint: a client
// authenticates exactly as at the token endpoint (any method it is
// registered for except none: public clients get no certificate) and
// POSTs a form with csr, the base64url (unpadded) DER of a PKCS#10 CSR
// for its own key, and optionally scope, a space-separated subset of its
// registered scopes (all of them when absent). The answer is the chain,
// leaf first, as application/pem-certificate-chain with Cache-Control
// no-store; see [fallback.CA.Issue] for what the certificate holds.
// Errors are RFC 6749 §5.2 JSON: invalid_request for a malformed CSR or a
// refused key, invalid_scope for a scope the client is not registered
// for. Without ServerConfig.Fallback the handler answers 404.
func (s *Server) CertificateHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		if s.cfg.Fallback == nil {
			http.NotFound(w, r)
			return
		}
		body, err := s.certificate(w, r)
		if err != nil {
			s.writeError(w, "certificate", err)
			return
		}
		w.Header().Set("Content-Type", "application/pem-certificate-chain")
		w.WriteHeader(http.StatusOK)
		w.Write(body)
	})
}

func (s *Server) certificate(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, &Error{Code: oautherr.InvalidRequest, Description: "the certificate endpoint accepts POST only", Status: http.StatusMethodNotAllowed, Reason: oautherr.ReasonRequestMalformed, Err: ErrInvalidRequest}
	}
	f, err := readForm(w, r)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	client, err := s.authenticate(ctx, r, f, CertificatePath)
	if err != nil {
		return nil, err
	}
	if client.Public() {
		return nil, newError(ErrUnauthorizedClient, "public clients cannot obtain a certificate")
	}
	csr, err := base64.RawURLEncoding.Strict().DecodeString(f.get("csr"))
	if err != nil || len(csr) == 0 {
		return nil, newError(ErrInvalidRequest, "csr must be the base64url DER of a PKCS#10 request")
	}
	var requested []string
	if sc := f.get("scope"); sc != "" {
		requested = strings.Split(sc, " ")
	}
	chain, err := s.cfg.Fallback.Issue(ctx, csr, client.ID, client.Scopes, requested)
	switch {
	case errors.Is(err, fallback.ErrScopeNotGranted):
		return nil, refuse(ErrInvalidScope, fallback.ReasonOf(err), "requested scope is not allowed", err)
	case errors.Is(err, fallback.ErrInvalidCSR):
		return nil, refuse(ErrInvalidRequest, fallback.ReasonOf(err), "invalid certificate signing request", err)
	case errors.Is(err, fallback.ErrKeyNotAccepted):
		return nil, refuse(ErrInvalidRequest, fallback.ReasonOf(err), "key type or size not accepted", err)
	case err != nil:
		return nil, err
	}
	var out []byte
	for _, c := range chain {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out, nil
}

// CRLHandler returns the fallback CA's CRL endpoint ([fallback.CA.CRLHandler]:
// GET and HEAD, cacheable, conditional requests). Without
// ServerConfig.Fallback it answers 404.
func (s *Server) CRLHandler() http.Handler {
	if s.cfg.Fallback == nil {
		return http.NotFoundHandler()
	}
	return s.cfg.Fallback.CRLHandler()
}
