package resource

import (
	"context"
	"net/http"
)

type principalKey struct{}

// Middleware returns net/http middleware that admits a request only when
// [Verifier.Check] succeeds under p, stores the [*Principal] in the request
// context (read it with [PrincipalFromContext]) and sets the success
// headers; otherwise it answers with [WriteRejection] and does not call
// next.
// It panics when p cannot be enforced with this Verifier (see
// [Verifier.ValidatePolicy]), so misconfiguration fails at startup.
func (v *Verifier) Middleware(p Policy) func(http.Handler) http.Handler {
	if err := v.ValidatePolicy(p); err != nil {
		panic(err)
	}
	p.Scopes = append([]string(nil), p.Scopes...)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			pr, err := v.Check(r, p)
			if err != nil {
				WriteRejection(w, r, err)
				return
			}
			pr.SetResponseHeaders(w.Header())
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), pr)))
		})
	}
}

// NewContext returns a copy of ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFromContext returns the principal stored by the middleware, or
// nil when there is none.
func PrincipalFromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
