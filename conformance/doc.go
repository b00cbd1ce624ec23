// Package conformance is a black-box conformance suite for sender-constrained
// OAuth access tokens: DPoP (RFC 9449) and certificate-bound tokens
// (RFC 8705), at the token endpoint, the resource server and the metadata
// and introspection endpoints.
//
// It talks only HTTP(S) to the target, so it works against any
// implementation: a Go library, an authorization server product, a gateway.
// It builds its own proofs (valid and deliberately malformed), parses
// challenges and computes thumbprints itself, and imports nothing else from
// this module.
//
// Every case carries the id of a requirement in the project's checklist
// (e.g. "DPOP-RS-05", "ERR-13", "ADV-64"), the RFC section, a level and the
// role it targets; [Cases] lists the catalogue.
//
// # Running
//
//	target := conformance.Target{
//		TokenEndpoint: "https://as.example.test/token",
//		ClientID:      "app",
//		ClientSecret:  "secret",
//		Resource:      "https://rs.example.test/resource",
//	}
//	rep, err := conformance.Run(ctx, target, conformance.Options{Cases: []string{"A", "ERR"}})
//	if err != nil { ... }
//	rep.WriteText(os.Stdout)
//	if rep.Failed() { os.Exit(1) }
//
// In a Go test, [RunTest] runs each case as a subtest.
//
// # Outcomes
//
// Each case ends pass, fail, warn or skip. MUST-level failures make
// [Report.Failed] true. SHOULD-level failures are warnings. Policy cases
// (stronger than the RFC minimum, e.g. refusing replayed proofs) fail in the
// report without failing the run. Record cases log what the target does.
// A case whose preconditions the [Target] cannot meet (no issuer key, no
// client certificate, ...) is skipped with the reason, never passed.
//
// Every response to a request the suite expects to be refused is also
// checked for a 5xx status and for echoed credentials (the token, the proof
// or its signature), and every response for Client-Cert headers.
//
// The suite follows the server's nonce the way a good client does: a
// use_dpop_nonce answer with a DPoP-Nonce header is retried once with a new
// proof carrying the nonce, so servers requiring nonces are tested fairly.
//
// # Capabilities and safety
//
// [Target.IssuerKey] lets the suite forge tokens (expired, wrong audience,
// alg none, ...). [Target.RefreshGrant] names a grant by which a public
// client obtains refresh tokens without a user (for the refresh-token
// binding cases); such a grant is a test hook that only a test deployment
// may offer. Use both only with test deployments. The suite never logs
// tokens or proofs; reports carry status codes, error codes and one-line
// reasons only.
package conformance
