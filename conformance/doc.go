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
//	var pe *conformance.PreflightError
//	if errors.As(err, &pe) { ... } // the target does not match its description
//	if err != nil { ... }
//	rep.WriteText(os.Stdout)
//	if rep.Failed() { os.Exit(1) }
//
// In a Go test, [RunTest] runs each case as a subtest.
//
// # Preflight
//
// Before the cases, [Run] checks what the [Target] promises: per binding
// of its profile, the token endpoint answers and accepts the credentials;
// the resource accepts a valid request (the positive control); TLS trust
// is right; a server that demands nonces was declared to. A mismatch stops
// the run with a [PreflightError] naming the cause on one line
// ("invalid_client at the token endpoint", "connection refused at the
// resource", "TLS: unknown authority at the token endpoint — pass
// --ca-file") instead of a report of failed cases.
//
// # Verdicts
//
// A case runs all its variants and grades each as a [Check] with a [Tier]
// beside its RFC level:
//
//   - accepted-attack: the target accepted what it must refuse (a replayed
//     proof, a forged token, DPoP over plain HTTP), or echoed a credential;
//   - missing-feature: a requirement the target does not implement;
//   - wrong-refusal: the target refused, but with another status, scheme
//     or error code than the RFC's, or with a 5xx. A refusal that differs
//     only in a status RFC 6750 §3.1 maps at SHOULD level (400 for
//     invalid_dpop_proof where 401 is expected) is graded SHOULD;
//   - pass, record (what the target does where the RFCs allow several
//     behaviours, or a deliberate local-test setting), skip (with the
//     reason).
//
// A [Result] carries the most severe tier of its checks. [Report.Failed]
// is true when an attack was accepted (at any level) or a MUST-level
// feature is missing; [Report.FailedStrict] also on wrong refusals. The
// text report opens with a summary: the accepted attacks, one line each,
// the missing features, and the wrong refusals grouped by pattern ("43
// cases: refused with 400 where 401 is expected"). JSON and JUnit carry
// the tier per case and per check.
//
// Levels still weigh: [LevelMust] is the RFCs' MUST; [LevelShould] their
// SHOULD; [LevelPolicy] cases go beyond the RFC minimum (refusing replayed
// proofs), and an attack they catch still counts; [LevelRecord] cases log
// what the target does. A case whose preconditions the [Target] cannot
// meet (no issuer key, no client certificate, ...) or that lies outside
// its [Profile] is skipped with the reason, never passed.
//
// Every response to a request the suite expects to be refused is also
// checked for a 5xx status and for echoed credentials (the token, the proof
// or its signature), and every response for Client-Cert headers.
//
// The suite follows the server's nonce the way a good client does: a
// use_dpop_nonce answer with a DPoP-Nonce header is retried once with a new
// proof carrying the nonce, so servers requiring nonces are tested fairly.
//
// # Profiles and local tests
//
// [Target.Profile] says which binding the deployment claims: [ProfileDPoP]
// skips the mTLS cases even when a client certificate is given (it may
// still authenticate the client at the token endpoint), [ProfileMTLS]
// skips the DPoP cases, [ProfileBoth] runs both. [Target.Scope] is the
// scope requested; [Target.ResourceScope] a scope the resource requires.
// [Target.AllowLoopbackHTTP] declares plain HTTP on loopback a deliberate
// local-test setting: the cases requiring HTTPS record it, neither pass
// nor fail.
//
// # Authorization codes and PAR
//
// [Target.Authorization] describes a non-interactive authorization
// endpoint of a test deployment (an [AuthorizationFlow]): it redirects a
// valid authorization request of Target.ClientID at once to the
// registered redirect URI with a code. The suite sends the request with
// PKCE (S256) and a state, does not follow the redirect and reads the
// code from its Location header; nothing is ever sent to the redirect
// URI, so it need not exist. Each code is redeemed once, at the token
// endpoint, with a DPoP proof. With it, DPOP-AS-22 and DPOP-AS-23 test
// dpop_jkt at the authorization endpoint (RFC 9449 §10). With
// [Target.MetadataURL] as well, DPOP-AS-24, DPOP-AS-25 and DPOP-AS-26 push
// the request first to the metadata's pushed_authorization_request_endpoint
// (RFC 9126), authenticated like token requests, with dpop_jkt, a DPoP
// proof (htu = that endpoint), or both (RFC 9449 §10.1). A target whose
// metadata names no PAR endpoint gets these three skipped as not
// applicable; without Target.Authorization all five are skipped with the
// capability hint.
//
// # Client keys at a jwks_uri
//
// MTLS-CA-11 checks that a self_signed_tls_client_auth client registered
// with a jwks_uri rotates its certificate with no change at the
// authorization server. The suite must control what the client publishes,
// so it serves the key set itself: start a [ClientKeyHost] on loopback
// before the target, register ClientKeyHost.URL(id) as the jwks_uri of a
// client id, let the target trust the host's certificate and fetch from
// loopback (a test-only setting: a production server refuses private
// addresses), and set [Target.ClientKeys] and [Target.JWKSURIClientID].
// The case publishes a certificate S1 and expects a token; publishes S3
// beside it and expects a token once the target has refetched the set
// (presenting an unknown certificate should trigger that); removes S1 and
// expects invalid_client once the target has refreshed the set (the host
// serves it with max-age=1). Each wait is bounded by
// [Target.KeyRefreshWait] (default 30 s), which should exceed the
// target's minimum interval between fetches. Without a key host the case
// is skipped as not applicable.
//
//	host, _ := conformance.NewClientKeyHost(conformance.ClientKeyHostConfig{Certificate: hostCert})
//	defer host.Close()
//	// register host.URL("rotating-app") as the jwks_uri of "rotating-app", then:
//	target.ClientKeys, target.JWKSURIClientID = host, "rotating-app"
//
// The senderbound command does the same with conform --client-key-host
// HOST:PORT (a loopback IP address and a fixed port, so that the URL can
// be registered before the target starts), --client-key-host-cert and
// --client-key-host-key (the host's certificate, whose CA the target
// trusts), --jwks-uri-client ID and --key-refresh-wait DUR.
//
// # Capabilities and safety
//
// [Target.IssuerKey] lets the suite forge tokens (expired, wrong audience,
// alg none, ...). [Target.RefreshGrant] names a grant by which a public
// client obtains refresh tokens without a user (for the refresh-token
// binding cases), and [Target.Authorization] an authorization endpoint
// that approves without a user; each is a test hook that only a test
// deployment may offer. Use them only with test deployments.
//
// # Opaque tokens and introspection
//
// DPOP-RS-23, DPOP-RS-24 and MTLS-CB-13 need an opaque access token (one
// that is not a JWS) whose binding the resource server learns by
// introspection; a target issuing JWTs gets "not applicable" for them.
// DPOP-RS-24 observes the resource server's introspection call through a
// recording proxy the suite serves on [Target.IntrospectionProxy] for the
// run and forwards to [Target.IntrospectionEndpoint]: the operator points
// the resource server's introspection endpoint at the proxy's loopback
// address, and the case checks that the call carried no DPoP header or
// proof. The proxy keeps only hashes of tokens, and answers RFC 9449's
// example token (Figure 10) itself with Figure 11, the introspection form
// of KAT-7.
//
// The suite never logs tokens or proofs; reports carry status codes, error
// codes and one-line reasons only.
package conformance
