package main

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/issuer"
)

// flowClient drives the authorization-code flow against the server as
// client web, without a browser.
type flowClient struct {
	Server, ClientID, Secret, RedirectURI string
	HTTP                                  *http.Client
	Now                                   func() time.Time // proof iat; nil means time.Now
}

// flowOptions choose how run binds the code: through PAR with a DPoP
// proof (Proof), through PAR or the query with a dpop_jkt parameter
// (JKT), or not at all.
type flowOptions struct {
	PAR   bool
	Proof bool
	JKT   string
}

// tokenAnswer is a token endpoint response.
type tokenAnswer struct {
	Status      int
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	Error       string `json:"error"`
}

// run pushes (or sends) an authorization request, obtains a code and
// redeems it with a proof by key.
func (c *flowClient) run(ctx context.Context, key crypto.Signer, o flowOptions) (string, error) {
	verifier := oauth2.GenerateVerifier()
	params := c.authorizationParams(verifier)
	if o.JKT != "" {
		params.Set(issuer.ParamDPoPJKT, o.JKT)
	}
	if o.PAR {
		var proofKey crypto.Signer
		if o.Proof {
			proofKey = key
		}
		status, body, err := c.push(ctx, params, proofKey)
		if err != nil {
			return "", err
		}
		if status != http.StatusCreated {
			return "", fmt.Errorf("PAR answered %d %s", status, body["error"])
		}
		ru, _ := body["request_uri"].(string)
		params = url.Values{"client_id": {c.ClientID}, "request_uri": {ru}}
	}
	code, err := c.authorize(ctx, params)
	if err != nil {
		return "", err
	}
	tok, err := c.token(ctx, code, verifier, key)
	if err != nil {
		return "", err
	}
	if tok.Status != http.StatusOK || !strings.EqualFold(tok.TokenType, "DPoP") {
		return "", fmt.Errorf("token endpoint answered %d %s (token_type %q)", tok.Status, tok.Error, tok.TokenType)
	}
	return tok.AccessToken, nil
}

// authorizationParams are the parameters of an authorization request with
// PKCE S256 for verifier.
func (c *flowClient) authorizationParams(verifier string) url.Values {
	return url.Values{
		"response_type": {"code"}, "client_id": {c.ClientID}, "redirect_uri": {c.RedirectURI},
		"scope": {"read"}, "state": {"st-" + verifier[:8]},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
	}
}

// push sends params to the PAR endpoint, authenticated with
// client_secret_basic and with a DPoP proof by proofKey unless it is nil.
func (c *flowClient) push(ctx context.Context, params url.Values, proofKey crypto.Signer) (int, map[string]any, error) {
	target := strings.TrimSuffix(c.Server, "/") + issuer.PARPath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(params.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.Secret))
	if proofKey != nil {
		if err := c.addProof(req, proofKey, ""); err != nil {
			return 0, nil, err
		}
	}
	return c.doJSON(req)
}

// authorize sends the authorization request and returns the code from the
// redirect, which it does not follow.
func (c *flowClient) authorize(ctx context.Context, params url.Values) (string, error) {
	u := strings.TrimSuffix(c.Server, "/") + authorizePth + "?" + params.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	hc := *c.HTTP
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return "", fmt.Errorf("authorization endpoint answered %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), c.RedirectURI+"?") {
		return "", errors.New("authorization endpoint redirected elsewhere")
	}
	if e := loc.Query().Get("error"); e != "" {
		return "", &redirectError{Code: e}
	}
	return loc.Query().Get("code"), nil
}

// redirectError is an error the authorization endpoint redirected with.
type redirectError struct{ Code string }

func (e *redirectError) Error() string {
	return "authorization endpoint redirected with error " + e.Code
}

// token redeems code with a DPoP proof by key (none when nil).
func (c *flowClient) token(ctx context.Context, code, verifier string, key crypto.Signer) (*tokenAnswer, error) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.RedirectURI}, "code_verifier": {verifier}}
	target := strings.TrimSuffix(c.Server, "/") + issuer.TokenPath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.Secret))
	if key != nil {
		if err := c.addProof(req, key, ""); err != nil {
			return nil, err
		}
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	t := &tokenAnswer{Status: resp.StatusCode}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(t); err != nil {
		return nil, fmt.Errorf("token response: %w", err)
	}
	return t, nil
}

// call GETs api with the DPoP-bound token and a proof by key.
func (c *flowClient) call(ctx context.Context, key crypto.Signer, api, token string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "DPoP "+token)
	if err := c.addProof(req, key, token); err != nil {
		return nil, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("resource answered %d", resp.StatusCode)
	}
	return body, nil
}

func (c *flowClient) doJSON(req *http.Request) (int, map[string]any, error) {
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body := map[string]any{}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, body, nil
}

// addProof adds a DPoP proof by key for req (with ath for token).
func (c *flowClient) addProof(req *http.Request, key crypto.Signer, token string) error {
	p, err := dpop.NewProver(key, &dpop.ProverOptions{Now: c.Now})
	if err != nil {
		return err
	}
	proof, err := p.Proof(req.Method, req.URL.String(), dpop.ProofOptions{AccessToken: token})
	if err != nil {
		return err
	}
	req.Header.Set("DPoP", proof)
	return nil
}
