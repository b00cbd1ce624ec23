package echoresource_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/echoresource"
	"github.com/senderbound/senderbound/resource/internal/restest"
)

// echoHandler serves restest.Routes through the Echo adapter.
func echoHandler(t testing.TB, env *restest.Env) http.Handler {
	t.Helper()
	e := echo.New()
	e.HideBanner = true
	for _, rt := range restest.Routes() {
		if !restest.Servable(env.Verifier, rt) {
			continue
		}
		mw, err := echoresource.Config{Verifier: env.Verifier, Policy: rt.Policy}.ToMiddleware()
		if err != nil {
			t.Fatal(err)
		}
		e.Any(rt.Path, func(c echo.Context) error {
			p, _ := c.Get(echoresource.DefaultContextKey).(*resource.Principal)
			if p != echoresource.Principal(c) {
				return c.String(http.StatusInternalServerError, "principal differs between context key and request context")
			}
			return c.String(http.StatusOK, restest.OKBody(p))
		}, mw)
	}
	return e
}

func TestEchoCases(t *testing.T) {
	t.Parallel()
	env := restest.NewEnv(t, restest.Options{DPoP: true})
	targets := restest.StartServers(t, env, echoHandler(t, env))
	restest.Run(t, env, targets, append(restest.BearerCases(), restest.BoundCases()...))
}

// TestEchoPolicyCases sends every fault to every route policy through
// the Echo adapter: the error code follows the fault, not the policy.
func TestEchoPolicyCases(t *testing.T) {
	t.Parallel()
	env := restest.NewEnv(t, restest.Options{DPoP: true})
	targets := restest.StartServers(t, env, echoHandler(t, env))
	restest.Run(t, env, targets, restest.PolicyCases())
}

// TestEchoSlowBody: through the Echo adapter too, a refused request is
// answered without reading its body and its connection is closed.
func TestEchoSlowBody(t *testing.T) {
	t.Parallel()
	env := restest.NewEnv(t, restest.Options{DPoP: true})
	srv := httptest.NewServer(echoHandler(t, env))
	t.Cleanup(srv.Close)
	restest.RunSlowBody(t, env, srv.URL)
}

func TestEchoNonceCases(t *testing.T) {
	t.Parallel()
	env := restest.NewEnv(t, restest.Options{DPoP: true, Nonces: true})
	targets := restest.StartServers(t, env, echoHandler(t, env))
	restest.Run(t, env, targets, restest.NonceCases())
}

func TestEchoInsecureHTTPCases(t *testing.T) {
	t.Parallel()
	env := restest.NewEnv(t, restest.Options{DPoP: true, InsecureHTTP: true})
	targets := restest.StartServers(t, env, echoHandler(t, env))
	restest.Run(t, env, targets, restest.InsecureHTTPCases())
}

func TestToMiddlewareErrors(t *testing.T) {
	t.Parallel()
	noDPoP := restest.NewEnv(t, restest.Options{})
	tests := []struct {
		name string
		cfg  echoresource.Config
	}{
		{"nil verifier", echoresource.Config{}},
		{"AcceptDPoP without DPoP configured", echoresource.Config{Verifier: noDPoP.Verifier, Policy: resource.Policy{Accept: resource.AcceptDPoP}}},
		{"invalid Accept", echoresource.Config{Verifier: noDPoP.Verifier, Policy: resource.Policy{Accept: 99}}},
		{"scope with a quote", echoresource.Config{Verifier: noDPoP.Verifier, Policy: resource.Policy{Scopes: []string{`a"b`}}}},
		{"empty scope", echoresource.Config{Verifier: noDPoP.Verifier, Policy: resource.Policy{Scopes: []string{""}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := tc.cfg.ToMiddleware(); err == nil {
				t.Fatal("ToMiddleware accepted an invalid configuration")
			}
			defer func() {
				if recover() == nil {
					t.Fatal("WithConfig did not panic")
				}
			}()
			echoresource.WithConfig(tc.cfg)
		})
	}
}

// TestConfigHooks covers Skipper, BeforeFunc, SuccessHandler,
// ErrorHandler, ContinueOnIgnoredError and ContextKey.
func TestConfigHooks(t *testing.T) {
	t.Parallel()
	env := restest.NewEnv(t, restest.Options{})
	good := "Bearer " + env.Token(t, nil)
	type seen struct{ before, success, errHandler bool }
	tests := []struct {
		name       string
		cfg        func(s *seen) echoresource.Config
		authz      string
		path       string
		wantStatus int
		wantBody   string
		want       seen
	}{
		{
			name: "skipper lets /health through unchecked",
			cfg: func(s *seen) echoresource.Config {
				return echoresource.Config{Skipper: func(c echo.Context) bool { return c.Path() == "/health" }}
			},
			path: "/health", wantStatus: 200, wantBody: "principal=false",
		},
		{
			name: "before and success hooks run, custom context key",
			cfg: func(s *seen) echoresource.Config {
				return echoresource.Config{
					BeforeFunc:     func(echo.Context) { s.before = true },
					SuccessHandler: func(echo.Context) { s.success = true },
					ContextKey:     "who",
				}
			},
			authz: good, path: "/p", wantStatus: 200, wantBody: "principal=true key=who", want: seen{before: true, success: true},
		},
		{
			name: "custom error handler's error is returned",
			cfg: func(s *seen) echoresource.Config {
				return echoresource.Config{ErrorHandler: func(c echo.Context, err error) error {
					s.errHandler = true
					if !errors.Is(err, resource.ErrInvalidToken) {
						return echo.NewHTTPError(http.StatusTeapot, "wrong class")
					}
					return echo.NewHTTPError(http.StatusUnauthorized, "custom")
				}}
			},
			authz: "Bearer x.y.z", path: "/p", wantStatus: 401, wantBody: "custom", want: seen{errHandler: true},
		},
		{
			name: "ignored error without ContinueOnIgnoredError stops the chain",
			cfg: func(s *seen) echoresource.Config {
				return echoresource.Config{ErrorHandler: func(c echo.Context, err error) error {
					s.errHandler = true
					return c.String(http.StatusPaymentRequired, "stopped")
				}}
			},
			authz: "Bearer x.y.z", path: "/p", wantStatus: 402, wantBody: "stopped", want: seen{errHandler: true},
		},
		{
			name: "ContinueOnIgnoredError runs the handler without principal",
			cfg: func(s *seen) echoresource.Config {
				return echoresource.Config{ContinueOnIgnoredError: true, ErrorHandler: func(c echo.Context, err error) error {
					s.errHandler = true
					return nil
				}}
			},
			authz: "Bearer x.y.z", path: "/p", wantStatus: 200, wantBody: "principal=false", want: seen{errHandler: true},
		},
		{
			name:  "default error rendering carries the challenge",
			cfg:   func(s *seen) echoresource.Config { return echoresource.Config{} },
			authz: "Bearer x.y.z", path: "/p", wantStatus: 401, wantBody: `"error":"invalid_token"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var s seen
			cfg := tc.cfg(&s)
			cfg.Verifier = env.Verifier
			cfg.Policy = resource.Policy{Accept: resource.AcceptAny}
			key := cfg.ContextKey
			if key == "" {
				key = echoresource.DefaultContextKey
			}
			e := echo.New()
			h := func(c echo.Context) error {
				_, ok := c.Get(key).(*resource.Principal)
				body := "principal=" + map[bool]string{true: "true", false: "false"}[ok]
				if ok && key != echoresource.DefaultContextKey {
					body += " key=" + key
				}
				return c.String(http.StatusOK, body)
			}
			e.GET("/health", h, echoresource.WithConfig(cfg))
			e.GET("/p", h, echoresource.WithConfig(cfg))
			srv := httptest.NewServer(e)
			defer srv.Close()
			req, _ := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
			if tc.authz != "" {
				req.Header.Set("Authorization", tc.authz)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b strings.Builder
			buf := make([]byte, 4096)
			n, _ := resp.Body.Read(buf)
			b.Write(buf[:n])
			if resp.StatusCode != tc.wantStatus || !strings.Contains(b.String(), tc.wantBody) {
				t.Fatalf("got %d %q, want %d containing %q", resp.StatusCode, b.String(), tc.wantStatus, tc.wantBody)
			}
			if s != tc.want {
				t.Fatalf("hooks = %+v, want %+v", s, tc.want)
			}
			if tc.name == "default error rendering carries the challenge" && !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Fatalf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}
