package resource_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/internal/redistest"
	"github.com/senderbound/senderbound/replaycache/redisstore"
	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/internal/restest"
)

// clusterRS is two resource-server instances sharing a Redis Cluster
// through their own ClusterClient and Store, with a prover and a token
// bound to it, on the real clock.
type clusterRS struct {
	cluster *redistest.Cluster
	a, b    *httptest.Server
	prover  *dpop.Prover
	token   string
}

const clusterURL = "https://rs.example.test/any"

func newClusterRS(t *testing.T) *clusterRS {
	t.Helper()
	c := &clusterRS{cluster: redistest.StartCluster(t, 3)}
	store := func() *redisstore.Store {
		s, err := redisstore.New(c.cluster.Client(), redisstore.Config{Prefix: "rs-cluster:", Timeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	e := restest.NewEnv(t, restest.Options{DPoP: true, InsecureHTTP: true, ReplayStore: store(), Mod: func(_ *restest.Env, c *resource.Config) {
		c.PublicURL = "https://rs.example.test"
		c.Now = time.Now
	}})
	instance := func() *httptest.Server {
		cfg := e.Config
		d := *cfg.DPoP
		d.ReplayStore = store()
		cfg.DPoP = &d
		v, err := resource.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		s := httptest.NewServer(restest.NetHTTPHandler(v))
		t.Cleanup(s.Close)
		return s
	}
	c.a, c.b = instance(), instance()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if c.prover, err = dpop.NewProver(key, nil); err != nil {
		t.Fatal(err)
	}
	c.token = e.Token(t, func(cl map[string]any) {
		now := time.Now()
		cl["cnf"] = map[string]any{"jkt": c.prover.Thumbprint()}
		cl["iat"] = now.Unix()
		cl["exp"] = now.Add(time.Hour).Unix()
	})
	return c
}

// proof returns a fresh proof for clusterURL and its jti.
func (c *clusterRS) proof(t *testing.T) (proof, jti string) {
	p, err := c.prover.Proof(http.MethodGet, clusterURL, dpop.ProofOptions{AccessToken: c.token})
	if err != nil {
		t.Error(err)
		return "", ""
	}
	parts := strings.Split(p, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Error(err)
		return "", ""
	}
	var claims struct {
		JTI string `json:"jti"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.JTI == "" {
		t.Errorf("proof without jti: %v", err)
	}
	return p, claims.JTI
}

// send sends proof to srv and returns the status, the WWW-Authenticate
// header and the body.
func (c *clusterRS) send(t *testing.T, srv *httptest.Server, proof string) (int, string, string) {
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/any", nil)
	req.Header.Set("Authorization", "DPoP "+c.token)
	req.Header.Set("DPoP", proof)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Error(err)
		return 0, "", ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(body)
}

// TestClusterConcurrentCopies sends concurrent copies of each proof to two
// resource-server instances sharing a real 3-master Redis Cluster: each
// proof is accepted exactly once, every other copy is refused as
// invalid_dpop_proof (DPOP-RS-15).
func TestClusterConcurrentCopies(t *testing.T) {
	t.Parallel()
	c := newClusterRS(t)
	const proofs, copies = 60, 6
	for i := 0; i < proofs; i++ {
		proof, _ := c.proof(t)
		var (
			wg       sync.WaitGroup
			accepted atomic.Int32
		)
		for j := 0; j < copies; j++ {
			srv := c.a
			if j%2 == 1 {
				srv = c.b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, www, _ := c.send(t, srv, proof)
				switch {
				case code == http.StatusOK:
					accepted.Add(1)
				case code != http.StatusUnauthorized || !strings.Contains(www, `error="invalid_dpop_proof"`):
					t.Errorf("proof %d: copy answered %d %q, want 200 or 401 invalid_dpop_proof", i, code, www)
				}
			}()
		}
		wg.Wait()
		if n := accepted.Load(); n != 1 {
			t.Fatalf("DPOP-RS-15: proof %d accepted %d times of %d concurrent copies at two instances, want exactly once", i, n, copies)
		}
	}
}

// TestClusterMasterKilled runs workers that send fresh proofs, and replays
// of the proofs just accepted, to two instances sharing a real 3-master
// Redis Cluster without replicas, kills one master mid-run and restarts it
// (empty, no persistence: with no replica to promote, a restart is how this
// cluster recovers). While the master is down requests fail closed with 503
// and no token detail (ADV-108); once the cluster is ok again fresh proofs
// are accepted; no proof is ever accepted twice, neither during the run nor
// when every accepted proof is sent again at the end, although the
// restarted master forgot the claims it held (DPOP-RS-15).
func TestClusterMasterKilled(t *testing.T) {
	t.Parallel()
	c := newClusterRS(t)
	var (
		mu       sync.Mutex
		accepted = map[string]string{} // jti → proof
		statuses = map[string]map[int]int{}
		phase    = "before"
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	record := func(code int) {
		mu.Lock()
		defer mu.Unlock()
		if statuses[phase] == nil {
			statuses[phase] = map[int]int{}
		}
		statuses[phase][code]++
	}
	count := func(p string, code int) int {
		mu.Lock()
		defer mu.Unlock()
		return statuses[p][code]
	}
	setPhase := func(p string) {
		mu.Lock()
		phase = p
		mu.Unlock()
	}
	for w := 0; w < 4; w++ {
		first, second := c.a, c.b
		if w%2 == 1 {
			first, second = c.b, c.a
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				proof, jti := c.proof(t)
				code, www, body := c.send(t, first, proof)
				record(code)
				switch code {
				case http.StatusOK:
					mu.Lock()
					_, twice := accepted[jti]
					accepted[jti] = proof
					mu.Unlock()
					if twice {
						t.Errorf("DPOP-RS-15: proof accepted twice")
					}
					if code, _, _ := c.send(t, second, proof); code == http.StatusOK {
						t.Errorf("DPOP-RS-15: proof accepted again at the other instance")
					}
				case http.StatusServiceUnavailable:
					if strings.Contains(body, c.token[:20]) || strings.Contains(body, proof[:20]) || strings.Contains(www, "invalid_token") {
						t.Errorf("ADV-108: 503 carries token or proof details: %q %q", www, body)
					}
				case http.StatusUnauthorized:
					// A proof issued before the detected loss, in the
					// same second (replay_state_lost).
					if !strings.Contains(www, `error="invalid_dpop_proof"`) {
						t.Errorf("fresh proof refused with %q", www)
					}
				default:
					t.Errorf("fresh proof answered %d %q", code, www)
				}
			}
		}()
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("%s within 15s; statuses %v", what, statuses)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("accepted 50 proofs", func() bool { return count("before", http.StatusOK) >= 50 })
	victim := c.cluster.Nodes[1]
	setPhase("down")
	victim.Stop()
	waitFor("503 with a master down", func() bool { return count("down", http.StatusServiceUnavailable) >= 20 })
	time.Sleep(time.Second) // past cluster-node-timeout: the cluster state is fail
	victim.Restart()
	c.cluster.WaitOK()
	setPhase("after")
	waitFor("accepted 50 proofs after the restart", func() bool { return count("after", http.StatusOK) >= 50 })
	close(stop)
	wg.Wait()
	t.Logf("statuses by phase: %v", statuses)

	// Every accepted proof, sent again to both instances, is refused.
	replayed := 0
	for _, proof := range accepted {
		for _, srv := range []*httptest.Server{c.a, c.b} {
			if code, www, _ := c.send(t, srv, proof); code != http.StatusUnauthorized {
				t.Fatalf("DPOP-RS-15: replay after the run answered %d %q, want 401", code, www)
			}
			replayed++
		}
	}
	if replayed < 200 {
		t.Fatalf("only %d replays checked", replayed)
	}
}
