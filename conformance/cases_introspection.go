package conformance

import (
	"context"
	"net/http"
)

// The cases that need an opaque access token: one that is not a JWS, so
// that the resource server learns its binding from the authorization
// server's introspection endpoint (RFC 9449 §6.2, RFC 7662). A target
// whose tokens are JWTs gets "not applicable" for them.

// needOpaque returns it when it is an opaque token, else a skip verdict
// saying why the case does not apply.
func needOpaque(it *issued) *verdict {
	if _, _, err := decodeJWT(it.access); err == nil {
		v := skipf("not applicable: the target's access tokens are JWTs; this case needs an opaque token validated by introspection")
		return &v
	}
	return nil
}

// opaqueStep is a step sending opaque token it with a proof by key under
// scheme (no proof under Bearer).
func opaqueStep(name string, it func(r *run) (*issued, *verdict), scheme string, key func(r *run) *clientKey, accept bool, ws []want) step {
	return step{name: name, accept: accept, want: ws, do: func(r *run) (*exchange, *verdict) {
		tok, v := it(r)
		if v != nil {
			return nil, v
		}
		if scheme != "DPoP" {
			return r.rs(rsReq{method: r.s.t.method(), scheme: scheme, token: tok.access})
		}
		return r.rs(r.dpopReq(tok, key(r), nil))
	}}
}

// opaqueAT1 returns the session's AT1 when it is opaque.
func opaqueAT1(r *run) (*issued, *verdict) {
	it, v := r.needDPoP()
	if v != nil {
		return nil, v
	}
	if v := needOpaque(it); v != nil {
		return nil, v
	}
	return it, nil
}

var wantKeyMismatch = []want{{401, "DPoP", []string{"invalid_token", "invalid_dpop_proof"}}}

// opaqueATC returns the session's ATC when it is opaque.
func opaqueATC(r *run) (*issued, *verdict) {
	it, v := r.needMTLS()
	if v != nil {
		return nil, v
	}
	if v := needOpaque(it); v != nil {
		return nil, v
	}
	return it, nil
}

// opaqueMTLSStep sends the opaque ATC under Bearer with client.
func opaqueMTLSStep(name string, client func(r *run) *http.Client, accept bool, ws []want) step {
	return step{name: name, accept: accept, want: ws, do: func(r *run) (*exchange, *verdict) {
		it, v := opaqueATC(r)
		if v != nil {
			return nil, v
		}
		return r.rs(rsReq{method: r.s.t.method(), scheme: "Bearer", token: it.access, client: client(r)})
	}}
}

// casesIntrospection are the cases that need an opaque access token.
var casesIntrospection = []Case{
	Case{ID: "DPOP-RS-23", Title: "the RS learns an opaque token's binding and enforces it", Section: "RFC 9449 §6, §6.2", Level: LevelMust, Role: RoleResource, Group: GroupA, Needs: CapDPoP,
		Expect: "opaque AT1 (introspection shows cnf.jkt = jkt(K1)): K1 proof → 2xx; K2 proof → 401 DPoP:invalid_token [open: invalid_dpop_proof]; Bearer scheme → 401",
		run: func(ctx context.Context, r *run) verdict {
			if _, v := opaqueAT1(r); v != nil {
				return *v
			}
			downgrade := bearerDowngradeStep("Bearer")
			return r.steps(
				opaqueStep("K1 proof", opaqueAT1, "DPoP", keyK1, true, nil),
				opaqueStep("K2 proof", opaqueAT1, "DPoP", keyK2, false, wantKeyMismatch),
				opaqueStep("Bearer scheme", opaqueAT1, "Bearer", nil, false, downgrade.want),
			)
		}},
	Case{ID: "DPOP-RS-24", Title: "with introspection the RS verifies the binding itself and sends no proof to the AS", Section: "RFC 9449 §6.2", Level: LevelMust, Role: RoleResource, Group: GroupA, Needs: CapDPoP | CapIntrospectionProxy,
		Expect: "fresh opaque token with a K1 proof → 2xx, and the RS's introspection call (through the suite's proxy) carries no DPoP header or proof; K2 proof → 401",
		run: func(ctx context.Context, r *run) verdict {
			fresh, err := r.s.newDPoPToken(ctx, r.s.k1)
			if err != nil {
				return skipf("precondition: no DPoP-bound token: %s", sanitizeErr(err))
			}
			if v := needOpaque(fresh); v != nil {
				return *v
			}
			it := func(*run) (*issued, *verdict) { return fresh, nil }
			return r.steps(
				opaqueStep("K1 proof", it, "DPoP", keyK1, true, nil),
				step{name: "introspection call", do: func(r *run) (*exchange, *verdict) {
					calls := r.s.proxy.callsFor(fresh.access)
					v := introspectionVerdict(calls)
					return nil, &v
				}},
				opaqueStep("K2 proof", it, "DPoP", keyK2, false, wantKeyMismatch),
			)
		}},
	Case{ID: "MTLS-CB-13", Title: "the RS compares an introspected cnf.x5t#S256 with the client certificate", Section: "RFC 8705 §3.2, §9.4", Level: LevelMust, Role: RoleResource, Group: GroupE, Needs: CapMTLS | CapSecondCert,
		Expect: "opaque ATC (introspection shows cnf.x5t#S256 of C1): with C1 → 2xx; with C2 → 401 Bearer:invalid_token",
		run: func(ctx context.Context, r *run) verdict {
			if _, v := opaqueATC(r); v != nil {
				return *v
			}
			return r.steps(
				opaqueMTLSStep("C1", func(r *run) *http.Client { return r.s.cert1 }, true, nil),
				opaqueMTLSStep("C2", func(r *run) *http.Client { return r.s.cert2 }, false, []want{{401, "Bearer", []string{"invalid_token"}}}),
			)
		}},
}

// introspectionVerdict judges the recorded introspection calls for one
// token.
func introspectionVerdict(calls []introCall) verdict {
	if len(calls) == 0 {
		return skipf("no introspection call for the token went through the proxy: point the resource server's introspection endpoint at the --introspection-proxy address")
	}
	for _, c := range calls {
		switch {
		case c.dpopHeader:
			return failf("the resource server sent a DPoP header to the introspection endpoint")
		case c.proof:
			return failf("the resource server sent a DPoP proof to the introspection endpoint")
		}
	}
	return passf("%s without a DPoP header or proof", plural(len(calls), "introspection call", "introspection calls"))
}
