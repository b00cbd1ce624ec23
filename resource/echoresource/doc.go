// Package echoresource adapts [resource.Verifier] to Echo v4 middleware,
// following the conventions of labstack/echo-jwt: a [Config] value with
// Skipper, BeforeFunc, SuccessHandler, ErrorHandler,
// ContinueOnIgnoredError and ContextKey; [Config.ToMiddleware] fills
// defaults on its own copy and reports configuration errors at build time;
// [WithConfig] panics on them, for use in e.Use(...).
//
// All checking and all error rendering happen in package resource, so
// Echo and net/http services behave identically. Unlike echo-jwt, the
// default error handling writes the response itself (status,
// WWW-Authenticate challenges, DPoP-Nonce, Cache-Control) with
// [resource.WriteRejection] and returns nil, because Echo's default error
// handler would drop the challenges (WriteRejection also closes an HTTP/1.x
// connection whose request body was not read, instead of draining it).
//
//	v, _ := resource.New(cfg)
//	e := echo.New()
//	api := e.Group("/api", echoresource.WithConfig(echoresource.Config{
//		Verifier: v,
//		Policy:   resource.Policy{Accept: resource.AcceptDPoP, Scopes: []string{"read"}},
//	}))
//	api.GET("/me", func(c echo.Context) error {
//		p := echoresource.Principal(c)
//		return c.String(http.StatusOK, p.Subject)
//	})
package echoresource
