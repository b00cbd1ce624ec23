package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/issuer"
)

const secret = "example-secret-0123456789abcdef"

// startIssuer serves a real issuer on loopback with one confidential
// client "app".
func startIssuer(t *testing.T) *httptest.Server {
	ts := httptest.NewUnstartedServer(nil)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := issuer.NewKeySet(issuer.SigningKey{Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	id := "http://" + ts.Listener.Addr().String()
	is, err := issuer.New(issuer.Config{Issuer: id, Keys: ks, Audience: []string{"https://resource.senderbound.test"}, InsecureAllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	clients, err := issuer.NewMemoryRegistry(issuer.Client{ID: "app", AuthMethod: issuer.AuthSecretBasic, SecretHash: issuer.HashSecret(secret)})
	if err != nil {
		t.Fatal(err)
	}
	asReplay, err := issuer.NewMemoryReplayStore(is, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := issuer.NewServer(issuer.ServerConfig{ReplayStore: asReplay, Issuer: is, Clients: clients})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

// TestMetrics wires the hooks to a registry as main does, sends known
// requests and checks the scraped samples.
func TestMetrics(t *testing.T) {
	as := startIssuer(t)
	api := httptest.NewUnstartedServer(nil)
	reg := prometheus.NewRegistry()
	h, err := newHandler(options{Issuer: as.URL, Audience: "https://resource.senderbound.test", PublicURL: "http://" + api.Listener.Addr().String()}, newPromMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	api.Config.Handler = h
	api.Start()
	defer api.Close()
	metrics := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer metrics.Close()

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	prover, err := dpop.NewProver(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	dc := &http.Client{Transport: &dpop.Transport{Prover: prover}}
	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequest(http.MethodPost, as.URL+issuer.TokenPath, strings.NewReader(form.Encode()))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(form.Encode())), nil }
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", secret)
	resp, err := dc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("token response %d: %v", resp.StatusCode, err)
	}

	calls := []struct {
		client *http.Client
		authz  string
		want   int
	}{
		{dc, "DPoP " + tok.AccessToken, http.StatusOK},
		{dc, "DPoP " + tok.AccessToken, http.StatusOK},
		{http.DefaultClient, "", http.StatusUnauthorized},
		{http.DefaultClient, "Bearer " + tok.AccessToken, http.StatusUnauthorized},
	}
	for i, c := range calls {
		req, _ := http.NewRequest(http.MethodGet, api.URL+"/resource", nil)
		if c.authz != "" {
			req.Header.Set("Authorization", c.authz)
		}
		resp, err := c.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Fatalf("call %d: %d, want %d", i, resp.StatusCode, c.want)
		}
	}

	resp, err = http.Get(metrics.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "api_auth_requests_total") || strings.HasPrefix(line, "api_auth_operation_duration_seconds_count") {
			got = append(got, line)
		}
	}
	slices.Sort(got)
	want := []string{
		`api_auth_operation_duration_seconds_count{operation="key_fetch",result="ok"} 1`,
		`api_auth_operation_duration_seconds_count{operation="proof",result="ok"} 2`,
		`api_auth_operation_duration_seconds_count{operation="replay_store",result="ok"} 2`,
		`api_auth_operation_duration_seconds_count{operation="token",result="ok"} 1`,
		`api_auth_requests_total{binding="",outcome="refused",reason="bearer_downgrade"} 1`,
		`api_auth_requests_total{binding="",outcome="refused",reason="no_credentials"} 1`,
		`api_auth_requests_total{binding="dpop",outcome="accepted",reason=""} 2`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("samples\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
