package fallback

import (
	"crypto"
	"crypto/x509"
	"errors"

	"github.com/senderbound/senderbound/dpop"
)

// NewProver returns a dpop.Prover for the client side of signed requests:
// its proofs are DPoP proofs signed with key whose protected header also
// carries chain (leaf first, then the CA) in x5c. The leaf must be the
// certificate for key. opts may be nil; opts.X5C is replaced by chain.
//
// Send a signed request with the proof in the DPoP header field and no
// Authorization header field:
//
//	proof, err := p.Proof(req.Method, req.URL.String(), dpop.ProofOptions{Nonce: nonce})
//	req.Header.Set("DPoP", proof)
//
// A dpop.Transport without a token source does the same, including the
// use_dpop_nonce retry.
func NewProver(key crypto.Signer, chain []*x509.Certificate, opts *dpop.ProverOptions) (*dpop.Prover, error) {
	if len(chain) == 0 || len(chain) > dpop.MaxX5C {
		return nil, errors.New("fallback: the chain must hold 1 to dpop.MaxX5C certificates")
	}
	var o dpop.ProverOptions
	if opts != nil {
		o = *opts
	}
	o.X5C = make([][]byte, len(chain))
	for i, c := range chain {
		if c == nil {
			return nil, errors.New("fallback: nil certificate in the chain")
		}
		o.X5C[i] = c.Raw
	}
	return dpop.NewProver(key, &o)
}
