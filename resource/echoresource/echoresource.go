package echoresource

import (
	"errors"

	"github.com/labstack/echo/v4"

	"github.com/senderbound/senderbound/resource"
)

// DefaultContextKey is the echo.Context key under which the
// [*resource.Principal] is stored when Config.ContextKey is empty.
const DefaultContextKey = "principal"

// Skipper reports whether the middleware should let a request through
// unchecked. It has the shape of echo's middleware.Skipper, so functions
// such as middleware.DefaultSkipper can be used directly. (The type is
// declared here so this package does not pull in echo's middleware
// package and its dependencies.)
type Skipper func(c echo.Context) bool

// BeforeFunc runs before the check; the shape of echo's
// middleware.BeforeFunc.
type BeforeFunc func(c echo.Context)

// DefaultSkipper never skips.
func DefaultSkipper(echo.Context) bool { return false }

// Config configures the middleware. It is used by value: ToMiddleware
// applies defaults to its own copy and never modifies the caller's.
type Config struct {
	// Verifier checks requests. Required.
	Verifier *resource.Verifier
	// Policy is what the protected routes require (accepted bindings,
	// scopes). The zero value accepts DPoP- or certificate-bound tokens
	// and requires no scope.
	Policy resource.Policy
	// Skipper skips the middleware for a request when it returns true.
	// Default: DefaultSkipper (never skip).
	Skipper Skipper
	// BeforeFunc runs before the check. Optional.
	BeforeFunc BeforeFunc
	// SuccessHandler runs after a successful check, before the next
	// handler. Optional.
	SuccessHandler func(c echo.Context)
	// ErrorHandler handles a rejected request. err is a *resource.Error
	// (use errors.Is with the resource sentinels, and resource.WriteError to
	// render the standard response, or resource.WriteRejection, which
	// also closes a connection whose request body was not read). Its
	// return value is returned by the middleware. Default: write the
	// response with resource.WriteRejection and return nil.
	ErrorHandler func(c echo.Context, err error) error
	// ContinueOnIgnoredError calls the next handler, without a principal,
	// when ErrorHandler returns nil. It MUST NOT be set unless the handlers
	// check for a principal themselves. Ignored without an ErrorHandler.
	ContinueOnIgnoredError bool
	// ContextKey is the echo.Context key for the principal. Default
	// DefaultContextKey ("principal").
	ContextKey string
}

// ToMiddleware validates the configuration and returns the middleware.
// It fails when Verifier is nil or Policy cannot be enforced by Verifier.
// The middleware is safe for concurrent use.
func (config Config) ToMiddleware() (echo.MiddlewareFunc, error) {
	if config.Verifier == nil {
		return nil, errors.New("echoresource: Config.Verifier is required")
	}
	if err := config.Verifier.ValidatePolicy(config.Policy); err != nil {
		return nil, err
	}
	config.Policy.Scopes = append([]string(nil), config.Policy.Scopes...)
	if config.Skipper == nil {
		config.Skipper = DefaultSkipper
	}
	if config.ContextKey == "" {
		config.ContextKey = DefaultContextKey
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if config.Skipper(c) {
				return next(c)
			}
			if config.BeforeFunc != nil {
				config.BeforeFunc(c)
			}
			r := c.Request()
			p, err := config.Verifier.Check(r, config.Policy)
			if err != nil {
				if config.ErrorHandler != nil {
					herr := config.ErrorHandler(c, err)
					if herr == nil && config.ContinueOnIgnoredError {
						return next(c)
					}
					return herr
				}
				resource.WriteRejection(c.Response(), r, err)
				return nil
			}
			p.SetResponseHeaders(c.Response().Header())
			c.Set(config.ContextKey, p)
			c.SetRequest(r.WithContext(resource.NewContext(r.Context(), p)))
			if config.SuccessHandler != nil {
				config.SuccessHandler(c)
			}
			return next(c)
		}
	}, nil
}

// WithConfig returns the middleware for config and panics when the
// configuration is invalid (see [Config.ToMiddleware]).
func WithConfig(config Config) echo.MiddlewareFunc {
	mw, err := config.ToMiddleware()
	if err != nil {
		panic(err)
	}
	return mw
}

// Principal returns the principal the middleware stored for this request
// (from the request context, so it works whatever ContextKey is), or nil.
func Principal(c echo.Context) *resource.Principal {
	return resource.PrincipalFromContext(c.Request().Context())
}
