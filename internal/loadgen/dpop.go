package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/oautherr"
)

const (
	// DefaultPoolDepth is the number of signed proofs [DPoP] keeps ready
	// when DPoPConfig.Depth is 0.
	DefaultPoolDepth = 256
	// DefaultProofMaxAge is how long a ready proof stays usable when
	// DPoPConfig.MaxAge is 0: far below the verifier's default iat window
	// (dpop.DefaultMaxAge, 60 s), so that proofs reach the server fresh.
	DefaultProofMaxAge = 2 * time.Second
	// maxSignerGoroutines bounds DPoPConfig.Signers.
	maxSignerGoroutines = 64
)

// DPoPConfig configures a [DPoP] authorizer.
type DPoPConfig struct {
	// Prover signs the proofs with the key the token is bound to. Required.
	Prover *dpop.Prover
	// Token is the DPoP-bound access token; each proof carries its ath.
	// Required.
	Token string
	// Method and URL are the request's htm and htu (the query is dropped
	// from htu). Required.
	Method, URL string
	// Signers is the number of goroutines that sign proofs ahead of need.
	// 0 means runtime.GOMAXPROCS(0); at most 64.
	Signers int
	// Depth is the number of signed proofs kept ready. 0 means
	// DefaultPoolDepth.
	Depth int
	// MaxAge is how long a ready proof stays usable; older ones are
	// discarded, so that every proof sent is seconds old at most. 0 means
	// DefaultProofMaxAge.
	MaxAge time.Duration
	// Lifetime is how long Token stays valid; with Refresh set, a new
	// token is requested at three quarters of it, and 1.5 s before its
	// end at the latest. 0 means it is not refreshed.
	Lifetime time.Duration
	// Refresh, when set, supplies the next token, bound to the same key.
	Refresh TokenSource
}

// DPoP sends "Authorization: DPoP <token>" with a fresh proof (RFC 9449
// §7.1) on every request, ath included. Proofs are signed ahead of need by
// background goroutines into a pool, so that signing stays off the request
// path; a worker that finds the pool empty signs its proof itself and the
// miss is counted. It answers nonce challenges as a client does: the
// latest DPoP-Nonce of any response goes into every later proof, and a 401
// use_dpop_nonce with a new nonce is retried once. Proofs signed for an
// older nonce or token, or older than MaxAge, are discarded unused.
//
// Build it with [NewDPoP]. It is safe for concurrent use.
type DPoP struct {
	cfg   DPoPConfig
	state atomic.Pointer[proofState]
	keep  refresher
	ready chan pooledProof

	signed, misses, stale atomic.Int64

	failed  atomic.Bool // signErr is set
	errMu   sync.Mutex
	signErr error
}

// proofState is what every proof of a generation shares: the token (and
// its Authorization value) and the nonce ("" before the server sent one).
// A new nonce or token makes a new generation, and proofs of older
// generations are stale.
type proofState struct {
	token, auth, nonce string
}

// newProofState returns the generation of token and nonce.
func newProofState(token, nonce string) *proofState {
	return &proofState{token: token, auth: "DPoP " + token, nonce: nonce}
}

// pooledProof is one proof signed ahead of need.
type pooledProof struct {
	proof string
	state *proofState
	made  time.Time
}

var _ Authorizer = (*DPoP)(nil)

// NewDPoP checks cfg, signs one proof to be sure the inputs are usable,
// and returns the authorizer. The pool's goroutines run only during
// [DPoP.Run].
func NewDPoP(cfg DPoPConfig) (*DPoP, error) {
	if cfg.Prover == nil || cfg.Token == "" || cfg.Method == "" || cfg.URL == "" {
		return nil, errors.New("loadgen: DPoP needs a prover, a token, a method and a URL")
	}
	if cfg.Signers < 0 || cfg.Depth < 0 || cfg.MaxAge < 0 {
		return nil, errors.New("loadgen: negative DPoP pool setting")
	}
	if cfg.Signers == 0 {
		cfg.Signers = runtime.GOMAXPROCS(0)
	}
	cfg.Signers = min(cfg.Signers, maxSignerGoroutines)
	if cfg.Depth == 0 {
		cfg.Depth = DefaultPoolDepth
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultProofMaxAge
	}
	d := &DPoP{cfg: cfg, ready: make(chan pooledProof, cfg.Depth)}
	d.state.Store(newProofState(cfg.Token, ""))
	if _, err := d.sign(d.state.Load()); err != nil {
		return nil, err
	}
	d.keep = refresher{source: cfg.Refresh, set: d.setToken}
	d.signed.Store(0)
	return d, nil
}

// Mode returns "dpop".
func (d *DPoP) Mode() string { return "dpop" }

// Run signs proofs into the pool until ctx ends, with cfg.Signers
// goroutines, refreshes the token when Refresh and Lifetime are set, and
// returns when all have stopped.
func (d *DPoP) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { d.keep.run(ctx, d.cfg.Lifetime) })
	for range d.cfg.Signers {
		wg.Go(func() {
			for ctx.Err() == nil {
				st := d.state.Load()
				p, err := d.sign(st)
				if err != nil {
					d.setErr(err)
					return
				}
				select {
				case d.ready <- pooledProof{proof: p, state: st, made: time.Now()}:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	wg.Wait()
}

// PoolStats returns how many proofs were signed, how many requests found
// the pool empty and signed their own, and how many ready proofs were
// discarded for an older nonce or age.
func (d *DPoP) PoolStats() (signed, misses, stale int64) {
	return d.signed.Load(), d.misses.Load(), d.stale.Load()
}

func (d *DPoP) sign(st *proofState) (string, error) {
	p, err := d.cfg.Prover.Proof(d.cfg.Method, d.cfg.URL, dpop.ProofOptions{AccessToken: st.token, Nonce: st.nonce})
	if err != nil {
		return "", fmt.Errorf("signing a DPoP proof: %w", err)
	}
	d.signed.Add(1)
	return p, nil
}

func (d *DPoP) setErr(err error) {
	d.errMu.Lock()
	defer d.errMu.Unlock()
	if d.signErr == nil {
		d.signErr = err
		d.failed.Store(true)
	}
}

// err returns the error that stopped the signers, if any.
func (d *DPoP) err() error {
	if !d.failed.Load() {
		return nil
	}
	d.errMu.Lock()
	defer d.errMu.Unlock()
	return d.signErr
}

// take returns a ready proof of generation st, or signs one.
func (d *DPoP) take(st *proofState) (string, error) {
	for {
		select {
		case p := <-d.ready:
			if p.state == st && time.Since(p.made) < d.cfg.MaxAge {
				return p.proof, nil
			}
			d.stale.Add(1)
		default:
			d.misses.Add(1)
			return d.sign(st)
		}
	}
}

// adopt makes nonce the nonce of every later proof, unless it is the
// current one or the prover refuses it (not 1*NQCHAR).
func (d *DPoP) adopt(nonce string) {
	for {
		cur := d.state.Load()
		if cur.nonce == nonce {
			return
		}
		next := newProofState(cur.token, nonce)
		p, err := d.sign(next)
		if err != nil {
			return
		}
		if d.state.CompareAndSwap(cur, next) {
			select {
			case d.ready <- pooledProof{proof: p, state: next, made: time.Now()}:
			default:
			}
			return
		}
	}
}

// setToken makes token the token of every later proof.
func (d *DPoP) setToken(token string) {
	for {
		cur := d.state.Load()
		if d.state.CompareAndSwap(cur, newProofState(token, cur.nonce)) {
			return
		}
	}
}

// Warnings reports failed token refreshes.
func (d *DPoP) Warnings() []string { return d.keep.warnings() }

// NewSession returns one worker's session.
func (d *DPoP) NewSession() Session { return &dpopSession{d: d} }

type dpopSession struct {
	d    *DPoP
	used *proofState // generation of the last proof sent
}

func (s *dpopSession) Authorize(req *http.Request) error {
	d := s.d
	if err := d.err(); err != nil {
		return err
	}
	st := d.state.Load()
	proof, err := d.take(st)
	if err != nil {
		return err
	}
	s.used = st
	req.Header.Set("Authorization", st.auth)
	req.Header.Set("DPoP", proof)
	return nil
}

func (s *dpopSession) Retry(resp *http.Response) bool {
	// A nonce equal to the one this request carried is an echo; adopting
	// it could undo a newer nonce that another worker learned meanwhile
	// (responses arrive in any order).
	if vs := resp.Header.Values("DPoP-Nonce"); len(vs) == 1 && vs[0] != s.used.nonce {
		s.d.adopt(vs[0])
	}
	if resp.StatusCode != http.StatusUnauthorized || s.d.state.Load() == s.used {
		return false
	}
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		cs, err := dpop.ParseChallenges(v)
		if err != nil {
			continue
		}
		for _, c := range cs {
			if strings.EqualFold(c.Scheme, "DPoP") && c.Error == oautherr.UseDPoPNonce {
				return true
			}
		}
	}
	return false
}
