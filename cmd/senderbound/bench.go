package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/senderbound/senderbound/dpop"
	"github.com/senderbound/senderbound/issuer"
	"github.com/senderbound/senderbound/mtlsbound/certs"
	"github.com/senderbound/senderbound/replaycache"
	"github.com/senderbound/senderbound/resource"
)

const benchSynopsis = `bench [--benchtime 1s|Nx] [--count N] [--run REGEXP] [--json]

Measures the framework's hot paths beside the raw signature operations on
this machine, in this process, with testing.Benchmark: DPoP proof
verification (replay claim in an in-memory replaycache.LRU included) and
creation for ES256, EdDSA and PS256, the resource server's request check
(DPoP with and without the verified-token cache, mTLS-bound token) and the
issuer's token minting. Each row states its ns/op and allocs/op, its ratio
to the raw ES256 (ECDSA P-256) verification of the same run, and its ratio
to the signature work it cannot avoid (its floor), also measured in the
same run. The rows match the packages' own benchmarks (go test -bench in
dpop, resource and issuer).`

// benchBaseline is the row every "x ES256 verify" ratio divides by.
const benchBaseline = "raw-es256-verify"

// benchNow is the frozen clock of every fixture (proof iat, token iat and
// exp, replay-cache expiry), so that no row depends on how long the run
// takes.
var benchNow = time.Unix(1_800_000_000, 0)

// benchTarget is the resource URL of every proof.
const benchTarget = "https://rs.example.test/resource"

// benchTestingMu serializes runs: testing.Benchmark reads its duration from
// the process-wide -test.benchtime flag, which a run sets and restores.
var benchTestingMu sync.Mutex

// benchRow is one line of the table.
type benchRow struct {
	id   string
	what string
	// floor names the row whose ns/op, times floorN, is the signature work
	// this row cannot avoid; "" means the row has no such floor.
	floor  string
	floorN int
	// prepare builds the row's inputs (not timed) and returns the timed body:
	// it must perform b.N operations.
	prepare func(fx *benchFixtures) (func(b *testing.B) error, error)
}

// benchResult is one measured row.
type benchResult struct {
	ID          string  `json:"id"`
	What        string  `json:"what"`
	Iterations  int     `json:"iterations"`
	NsPerOp     float64 `json:"ns_per_op"`
	AllocsPerOp int64   `json:"allocs_per_op"`
	BytesPerOp  int64   `json:"bytes_per_op"`
	// XVerify is NsPerOp over the raw-es256-verify row's.
	XVerify float64 `json:"x_es256_verify"`
	// Floor describes the unavoidable signature work ("2 × raw-es256-verify");
	// XFloor is NsPerOp over its cost. Both are empty for rows without one.
	Floor  string  `json:"floor,omitempty"`
	XFloor float64 `json:"x_floor,omitempty"`
}

// benchReport is the outcome of a run (the --json document).
type benchReport struct {
	GoVersion  string        `json:"go_version"`
	GOOS       string        `json:"goos"`
	GOARCH     string        `json:"goarch"`
	NumCPU     int           `json:"num_cpu"`
	GOMAXPROCS int           `json:"gomaxprocs"`
	Benchtime  string        `json:"benchtime"`
	Count      int           `json:"count"`
	Baseline   string        `json:"baseline"`
	Warning    string        `json:"warning"`
	Rows       []benchResult `json:"rows"`
}

const benchWarning = "These are wall-clock timings of this machine as it is right now: other processes, " +
	"CPU frequency scaling and shared or virtual CPUs make them noisy, and ratios measured minutes apart can differ by " +
	"10% or more. Compare ratios rather than absolute numbers, and re-run with --count 5 (medians) or a longer " +
	"--benchtime before drawing conclusions."

func runBench(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "bench", benchSynopsis)
	benchtime := fs.String("benchtime", "1s", "run each row for this long, or N times when of the form Nx (as go test -benchtime)")
	count := fs.Int("count", 1, "measure every row this many times and report the median")
	pattern := fs.String("run", "", "measure only rows whose id matches this regular expression (the rows their ratios need are measured too)")
	asJSON := fs.Bool("json", false, "print the results as JSON instead of a table")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	iters, err := benchParseTime(*benchtime)
	if err != nil {
		return benchUsage(e, err)
	}
	if *count < 1 {
		return benchUsage(e, fmt.Errorf("--count must be at least 1, got %d", *count))
	}
	re, err := regexp.Compile(*pattern)
	if err != nil {
		return benchUsage(e, fmt.Errorf("--run: %w", err))
	}
	rows := benchSelect(benchRows(), re)
	if len(rows) == 0 {
		return benchUsage(e, fmt.Errorf("--run %q matches no row (rows: %s)", *pattern, strings.Join(benchRowIDs(), ", ")))
	}

	rep, err := benchRun(ctx, e, rows, *benchtime, iters, *count)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return benchWriteTable(e.stdout, rep)
}

// benchUsage reports a bad flag value on one line and returns errUsage.
func benchUsage(e *env, err error) error {
	fmt.Fprintf(e.stderr, "senderbound bench: %s (run 'senderbound bench -h')\n", oneLine(err.Error()))
	return errUsage
}

// benchParseTime checks a --benchtime value: a positive duration, or a
// positive count "Nx" (returned as iters; 0 for a duration).
func benchParseTime(s string) (iters int, err error) {
	if n, ok := strings.CutSuffix(s, "x"); ok {
		v, err := strconv.Atoi(n)
		if err != nil || v <= 0 {
			return 0, fmt.Errorf("--benchtime %q: want a positive count like 100x", s)
		}
		return v, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--benchtime %q: want a positive duration like 1s or a count like 100x", s)
	}
	return 0, nil
}

// benchSelect returns the rows whose id matches re, plus every row their
// ratios need (the baseline and their floors), in table order.
func benchSelect(all []benchRow, re *regexp.Regexp) []benchRow {
	want := map[string]bool{}
	for _, r := range all {
		if re.MatchString(r.id) {
			want[r.id] = true
			want[benchBaseline] = true
			if r.floor != "" {
				want[r.floor] = true
			}
		}
	}
	var out []benchRow
	for _, r := range all {
		if want[r.id] {
			out = append(out, r)
		}
	}
	return out
}

func benchRowIDs() []string {
	var ids []string
	for _, r := range benchRows() {
		ids = append(ids, r.id)
	}
	return ids
}

// benchRun measures rows count times, in table order each time, and
// returns the medians with their ratios.
func benchRun(ctx context.Context, e *env, rows []benchRow, benchtime string, iters, count int) (*benchReport, error) {
	benchTestingMu.Lock()
	defer benchTestingMu.Unlock()
	// testing.Benchmark takes its duration from -test.benchtime; Init
	// registers that flag outside "go test" (a no-op inside it).
	testing.Init()
	bt := flag.CommandLine.Lookup("test.benchtime")
	if bt == nil {
		return nil, errors.New("testing did not register -test.benchtime")
	}
	old := bt.Value.String()
	if err := bt.Value.Set(benchtime); err != nil {
		return nil, fmt.Errorf("--benchtime: %w", err)
	}
	defer func() { _ = bt.Value.Set(old) }()

	fmt.Fprintf(e.stderr, "senderbound bench: measuring %d rows × %d, %s each; the table follows when all are done\n", len(rows), count, benchtime)
	fx := &benchFixtures{pool: benchPoolSize(iters)}
	bodies := make([]func(*testing.B) error, len(rows))
	for i, r := range rows {
		body, err := r.prepare(fx)
		if err != nil {
			return nil, fmt.Errorf("preparing %s: %w", r.id, err)
		}
		bodies[i] = body
	}
	samples := make([][]testing.BenchmarkResult, len(rows))
	for round := 0; round < count; round++ {
		for i, r := range rows {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			res, err := benchMeasure(bodies[i])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", r.id, err)
			}
			samples[i] = append(samples[i], res)
		}
	}

	rep := &benchReport{
		GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
		NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		Benchtime: benchtime, Count: count, Baseline: benchBaseline, Warning: benchWarning,
	}
	ns := map[string]float64{}
	for i, r := range rows {
		m := benchMedian(samples[i])
		res := benchResult{
			ID: r.id, What: r.what, Iterations: m.N, NsPerOp: benchNsPerOp(m),
			AllocsPerOp: m.AllocsPerOp(), BytesPerOp: m.AllocedBytesPerOp(),
		}
		ns[r.id] = res.NsPerOp
		rep.Rows = append(rep.Rows, res)
	}
	for i, r := range rows {
		res := &rep.Rows[i]
		res.XVerify = res.NsPerOp / ns[benchBaseline]
		if r.floor != "" {
			res.Floor = r.floor
			if r.floorN != 1 {
				res.Floor = fmt.Sprintf("%d × %s", r.floorN, r.floor)
			}
			res.XFloor = res.NsPerOp / (float64(r.floorN) * ns[r.floor])
		}
	}
	return rep, nil
}

// benchMeasure runs body under testing.Benchmark. body reports a failure
// by returning an error, which ends the measurement.
func benchMeasure(body func(*testing.B) error) (testing.BenchmarkResult, error) {
	var failure error
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		if err := body(b); err != nil {
			failure = err
			b.FailNow()
		}
	})
	if failure != nil {
		return res, failure
	}
	if res.N == 0 {
		return res, errors.New("the benchmark did not run")
	}
	return res, nil
}

func benchNsPerOp(r testing.BenchmarkResult) float64 {
	return float64(r.T.Nanoseconds()) / float64(r.N)
}

// benchMedian returns the sample with the median ns/op (the upper one of
// the two middle samples for an even count).
func benchMedian(rs []testing.BenchmarkResult) testing.BenchmarkResult {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b testing.BenchmarkResult) int {
		x, y := benchNsPerOp(a), benchNsPerOp(b)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
	return s[len(s)/2]
}

// benchWriteTable prints the report as an aligned table, then what each
// row measures, the legend and the noise warning.
func benchWriteTable(w io.Writer, rep *benchReport) error {
	ew := &benchErrWriter{w: w}
	fmt.Fprintf(ew, "senderbound bench: %s %s/%s, %d CPUs, GOMAXPROCS %d, benchtime %s, count %d\n\n",
		rep.GoVersion, rep.GOOS, rep.GOARCH, rep.NumCPU, rep.GOMAXPROCS, rep.Benchtime, rep.Count)
	cells := [][]string{{"ROW", "NS/OP", "ALLOCS/OP", "B/OP", "x ES256 VERIFY", "x FLOOR", "FLOOR"}}
	for _, r := range rep.Rows {
		xf, floor := "-", "-"
		if r.Floor != "" {
			xf, floor = fmt.Sprintf("%.2f", r.XFloor), r.Floor
		}
		cells = append(cells, []string{
			r.ID, fmt.Sprintf("%.0f", r.NsPerOp), strconv.FormatInt(r.AllocsPerOp, 10), strconv.FormatInt(r.BytesPerOp, 10),
			fmt.Sprintf("%.2f", r.XVerify), xf, floor,
		})
	}
	width := make([]int, len(cells[0]))
	for _, row := range cells {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	// The first and last columns are text (left-aligned), the others numbers.
	for _, row := range cells {
		var b strings.Builder
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			switch i {
			case 0:
				b.WriteString(c + pad)
			case len(row) - 1:
				b.WriteString("  " + c)
			default:
				b.WriteString("  " + pad + c)
			}
		}
		fmt.Fprintln(ew, b.String())
	}
	fmt.Fprintln(ew, "\nRows:")
	for _, r := range rep.Rows {
		fmt.Fprintf(ew, "  %-*s  %s\n", width[0], r.ID, r.What)
	}
	fmt.Fprintf(ew, "\nx ES256 VERIFY is ns/op over the ns/op of %s in this run; x FLOOR is ns/op over the\n", rep.Baseline)
	fmt.Fprintln(ew, "signature work the row cannot avoid (the FLOOR rows, measured in this run). allocs/op and B/op")
	fmt.Fprintln(ew, "count heap allocations in the timed loop.")
	fmt.Fprintf(ew, "\n%s\n", benchWrap("WARNING: "+rep.Warning, 100))
	return ew.err
}

// benchWrap breaks s into lines of at most width runes at spaces.
func benchWrap(s string, width int) string {
	var b strings.Builder
	n := 0
	for i, word := range strings.Fields(s) {
		l := utf8.RuneCountInString(word)
		switch {
		case i == 0:
		case n+1+l > width:
			b.WriteByte('\n')
			n = 0
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(word)
		n += l
	}
	return b.String()
}

type benchErrWriter struct {
	w   io.Writer
	err error
}

func (e *benchErrWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// benchRows is the table, in the order rows are measured and printed. Each
// algorithm's raw rows come right before the rows whose floor they are.
func benchRows() []benchRow {
	var rows []benchRow
	for _, a := range []struct{ alg, name string }{
		{"ES256", "ECDSA P-256"},
		{"EdDSA", "Ed25519"},
		{"PS256", "RSA-PSS 2048"},
	} {
		alg := a.alg
		low := strings.ToLower(alg)
		rows = append(rows,
			benchRow{
				id:   "raw-" + low + "-verify",
				what: fmt.Sprintf("raw %s verify of a DPoP proof's signature (standard library)", a.name),
				prepare: func(fx *benchFixtures) (func(*testing.B) error, error) {
					k, err := fx.alg(alg)
					if err != nil {
						return nil, err
					}
					return benchLoop(k.rawVerify), nil
				},
			},
			benchRow{
				id:   "raw-" + low + "-sign",
				what: fmt.Sprintf("raw %s signature over a DPoP proof's signing input (crypto.Signer)", a.name),
				prepare: func(fx *benchFixtures) (func(*testing.B) error, error) {
					k, err := fx.alg(alg)
					if err != nil {
						return nil, err
					}
					return benchLoop(k.rawSign), nil
				},
			},
			benchRow{
				id:    "dpop-" + low + "-verify",
				what:  fmt.Sprintf("dpop.Verifier.Verify of a fresh %s proof (htm, htu, ath, jkt) incl. its jti claim in a replaycache.LRU", alg),
				floor: "raw-" + low + "-verify", floorN: 1,
				prepare: func(fx *benchFixtures) (func(*testing.B) error, error) {
					return fx.dpopVerify(alg)
				},
			},
			benchRow{
				id:    "dpop-" + low + "-proof",
				what:  fmt.Sprintf("dpop.Prover.Proof: create and sign a proof (%s) with ath", alg),
				floor: "raw-" + low + "-sign", floorN: 1,
				prepare: func(fx *benchFixtures) (func(*testing.B) error, error) {
					k, err := fx.alg(alg)
					if err != nil {
						return nil, err
					}
					return benchLoop(func() error {
						_, err := k.prover.Proof(http.MethodGet, benchTarget, dpop.ProofOptions{AccessToken: "token"})
						return err
					}), nil
				},
			},
		)
	}
	rows = append(rows,
		benchRow{
			id:    "resource-dpop-uncached",
			what:  "resource.Verifier.Check: DPoP request, token signature verified every time (token cache off)",
			floor: "raw-es256-verify", floorN: 2,
			prepare: func(fx *benchFixtures) (func(*testing.B) error, error) { return fx.resourceDPoP(-1) },
		},
		benchRow{
			id:    "resource-dpop-cached",
			what:  "resource.Verifier.Check: DPoP request, token found in the verified-token cache",
			floor: "raw-es256-verify", floorN: 1,
			prepare: func(fx *benchFixtures) (func(*testing.B) error, error) { return fx.resourceDPoP(0) },
		},
		benchRow{
			id:      "resource-mtls-cached",
			what:    "resource.Verifier.Check: certificate-bound Bearer token, client certificate from the TLS connection, token cached (the handshake did the signature work)",
			prepare: func(fx *benchFixtures) (func(*testing.B) error, error) { return fx.resourceMTLS() },
		},
		benchRow{
			id:    "issuer-mint-es256",
			what:  "issuer.Issuer.Mint: sign a DPoP-bound RFC 9068 access token (ES256)",
			floor: "raw-es256-sign", floorN: 1,
			prepare: func(fx *benchFixtures) (func(*testing.B) error, error) { return fx.mint() },
		},
	)
	return rows
}

// benchLoop times op b.N times.
func benchLoop(op func() error) func(*testing.B) error {
	return func(b *testing.B) error {
		for i := 0; i < b.N; i++ {
			if err := op(); err != nil {
				return err
			}
		}
		return nil
	}
}

// benchFixtures builds the inputs of the rows on first use and shares them
// between rows and rounds. Keys are fresh for every run.
type benchFixtures struct {
	pool   int
	algs   map[string]*benchKey
	is     *issuer.Issuer
	keySet *resource.StaticKeySet
}

// benchKey is one DPoP client key with a sample proof for the raw rows.
type benchKey struct {
	prover    *dpop.Prover
	rawVerify func() error
	rawSign   func() error
}

// benchPoolSize is how many distinct proofs a verifying row cycles
// through; each proof can be accepted once, so the replay store is
// replaced (timer stopped) whenever the pool starts over.
func benchPoolSize(iters int) int {
	const size = 256
	if iters > 0 && iters < size {
		return iters
	}
	return size
}

func (fx *benchFixtures) alg(alg string) (*benchKey, error) {
	if k := fx.algs[alg]; k != nil {
		return k, nil
	}
	var (
		key crypto.Signer
		err error
	)
	switch alg {
	case "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case "PS256":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		err = fmt.Errorf("no key type for %s", alg)
	}
	if err != nil {
		return nil, err
	}
	p, err := dpop.NewProver(key, &dpop.ProverOptions{Algorithm: alg, Now: func() time.Time { return benchNow }})
	if err != nil {
		return nil, err
	}
	sample, err := p.Proof(http.MethodGet, benchTarget, dpop.ProofOptions{AccessToken: "token"})
	if err != nil {
		return nil, err
	}
	k := &benchKey{prover: p}
	if k.rawVerify, err = benchRawVerifier(key.Public(), sample); err != nil {
		return nil, err
	}
	input := []byte(sample[:strings.LastIndexByte(sample, '.')])
	k.rawSign = benchRawSigner(key, alg, input)
	if fx.algs == nil {
		fx.algs = map[string]*benchKey{}
	}
	fx.algs[alg] = k
	return k, nil
}

// benchRawVerifier returns the bare standard-library verification of the
// compact JWS proof's signature: the floor of verifying it.
func benchRawVerifier(pub crypto.PublicKey, proof string) (func() error, error) {
	i := strings.LastIndexByte(proof, '.')
	input := []byte(proof[:i])
	sig, err := base64.RawURLEncoding.DecodeString(proof[i+1:])
	if err != nil {
		return nil, err
	}
	bad := errors.New("raw verification failed")
	switch pub := pub.(type) {
	case *ecdsa.PublicKey:
		// JWS carries r||s; the standard library verifies ASN.1.
		h := len(sig) / 2
		der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:h]), new(big.Int).SetBytes(sig[h:])})
		if err != nil {
			return nil, err
		}
		return func() error {
			d := sha256.Sum256(input)
			if !ecdsa.VerifyASN1(pub, d[:], der) {
				return bad
			}
			return nil
		}, nil
	case ed25519.PublicKey:
		return func() error {
			if !ed25519.Verify(pub, input, sig) {
				return bad
			}
			return nil
		}, nil
	case *rsa.PublicKey:
		opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}
		return func() error {
			d := sha256.Sum256(input)
			return rsa.VerifyPSS(pub, crypto.SHA256, d[:], sig, opts)
		}, nil
	}
	return nil, fmt.Errorf("unsupported key type %T", pub)
}

// benchRawSigner returns one bare signature of input with the JWS
// algorithm's parameters: the floor of creating a proof or a token.
func benchRawSigner(key crypto.Signer, alg string, input []byte) func() error {
	return func() error {
		var err error
		switch alg {
		case "EdDSA":
			_, err = key.Sign(rand.Reader, input, crypto.Hash(0))
		case "PS256":
			d := sha256.Sum256(input)
			_, err = key.Sign(rand.Reader, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
		default:
			d := sha256.Sum256(input)
			_, err = key.Sign(rand.Reader, d[:], crypto.SHA256)
		}
		return err
	}
}

// benchReplay is the replay store of the verifying rows: a real
// replaycache.LRU that benchProofs replaces with an empty one whenever the
// proof pool starts over.
type benchReplay struct{ lru *replaycache.LRU }

func (s *benchReplay) CheckAndStore(ctx context.Context, key [32]byte, exp time.Time) (bool, error) {
	return s.lru.CheckAndStore(ctx, key, exp)
}

func (s *benchReplay) reset() error {
	lru, err := replaycache.NewLRU(replaycache.Config{Now: func() time.Time { return benchNow }})
	if err != nil {
		return err
	}
	s.lru = lru
	return nil
}

var _ dpop.ReplayStore = (*benchReplay)(nil)

// benchProofs is a pool of distinct proofs for one request.
type benchProofs struct {
	proofs [][]string // header values, ready to assign
	next   int
	store  *benchReplay
}

func newBenchProofs(p *dpop.Prover, n int, token string) (*benchProofs, error) {
	bp := &benchProofs{store: &benchReplay{}}
	if err := bp.store.reset(); err != nil {
		return nil, err
	}
	for range n {
		s, err := p.Proof(http.MethodGet, benchTarget, dpop.ProofOptions{AccessToken: token})
		if err != nil {
			return nil, err
		}
		bp.proofs = append(bp.proofs, []string{s})
	}
	return bp, nil
}

// take returns the next unused proof, starting over with an empty replay
// store (timer stopped) when the pool is exhausted.
func (bp *benchProofs) take(b *testing.B) ([]string, error) {
	if bp.next == len(bp.proofs) {
		b.StopTimer()
		err := bp.store.reset()
		bp.next = 0
		b.StartTimer()
		if err != nil {
			return nil, err
		}
	}
	v := bp.proofs[bp.next]
	bp.next++
	return v, nil
}

func (fx *benchFixtures) dpopVerify(alg string) (func(*testing.B) error, error) {
	k, err := fx.alg(alg)
	if err != nil {
		return nil, err
	}
	pool, err := newBenchProofs(k.prover, fx.pool, "token")
	if err != nil {
		return nil, err
	}
	v, err := dpop.NewVerifier(dpop.Config{Algorithms: []string{alg}, ReplayStore: pool.store, Now: func() time.Time { return benchNow }})
	if err != nil {
		return nil, err
	}
	want := dpop.Expect{Method: http.MethodGet, URL: benchTarget, AccessToken: "token", JKT: k.prover.Thumbprint()}
	ctx := context.Background()
	return func(b *testing.B) error {
		for i := 0; i < b.N; i++ {
			proof, err := pool.take(b)
			if err != nil {
				return err
			}
			if _, err := v.Verify(ctx, proof[0], want); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

// mintingIssuer returns the ES256 issuer that mints every row's tokens, and the
// resource-side key set of its public keys.
func (fx *benchFixtures) mintingIssuer() (*issuer.Issuer, *resource.StaticKeySet, error) {
	if fx.is != nil {
		return fx.is, fx.keySet, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	ks, err := issuer.NewKeySet(issuer.SigningKey{Signer: key, Algorithm: "ES256"})
	if err != nil {
		return nil, nil, err
	}
	is, err := issuer.New(issuer.Config{
		Issuer: "https://as.example.test", Keys: ks, Audience: []string{"https://rs.example.test"},
		Now: func() time.Time { return benchNow },
	})
	if err != nil {
		return nil, nil, err
	}
	set, err := resource.NewStaticKeySet(ks.JWKS(benchNow))
	if err != nil {
		return nil, nil, err
	}
	fx.is, fx.keySet = is, set
	return is, set, nil
}

func benchMintRequest(b issuer.Binding) issuer.MintRequest {
	return issuer.MintRequest{Subject: "alice@example.com", ClientID: "client-1234", Scope: "read write", Binding: b}
}

func (fx *benchFixtures) mint() (func(*testing.B) error, error) {
	is, _, err := fx.mintingIssuer()
	if err != nil {
		return nil, err
	}
	k, err := fx.alg("ES256")
	if err != nil {
		return nil, err
	}
	req := benchMintRequest(issuer.Binding{JKT: k.prover.Thumbprint()})
	ctx := context.Background()
	return benchLoop(func() error {
		_, err := is.Mint(ctx, req)
		return err
	}), nil
}

// resourceVerifier builds the resource server's verifier over the bench
// issuer; cacheSize is Config.TokenCacheSize (-1 disables the cache).
func (fx *benchFixtures) resourceVerifier(cacheSize int, store dpop.ReplayStore) (*resource.Verifier, error) {
	is, keys, err := fx.mintingIssuer()
	if err != nil {
		return nil, err
	}
	cfg := resource.Config{
		Algorithms:     resource.DefaultAlgorithms(),
		Issuers:        []resource.Issuer{{Identifier: is.ID(), Keys: keys}},
		Audience:       "https://rs.example.test",
		PublicURL:      "https://rs.example.test", // benchTarget's origin
		TokenCacheSize: cacheSize,
		Now:            func() time.Time { return benchNow },
	}
	if store != nil {
		cfg.DPoP = &resource.DPoPConfig{Algorithms: []string{"ES256", "EdDSA", "PS256"}, ReplayStore: store}
	}
	return resource.New(cfg)
}

// benchPolicy accepts every kind of token and requires no scope, as the
// resource package's benchmark does.
var benchPolicy = resource.Policy{Accept: resource.AcceptAny}

func (fx *benchFixtures) resourceDPoP(cacheSize int) (func(*testing.B) error, error) {
	is, _, err := fx.mintingIssuer()
	if err != nil {
		return nil, err
	}
	k, err := fx.alg("ES256")
	if err != nil {
		return nil, err
	}
	tok, err := is.Mint(context.Background(), benchMintRequest(issuer.Binding{JKT: k.prover.Thumbprint()}))
	if err != nil {
		return nil, err
	}
	pool, err := newBenchProofs(k.prover, fx.pool, tok.Raw)
	if err != nil {
		return nil, err
	}
	v, err := fx.resourceVerifier(cacheSize, pool.store)
	if err != nil {
		return nil, err
	}
	r := httptest.NewRequest(http.MethodGet, benchTarget, nil)
	r.TLS = &tls.ConnectionState{}
	r.Header.Set("Authorization", "DPoP "+tok.Raw)
	return func(b *testing.B) error {
		for i := 0; i < b.N; i++ {
			proof, err := pool.take(b)
			if err != nil {
				return err
			}
			r.Header["Dpop"] = proof
			if _, err := v.Check(r, benchPolicy); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

func (fx *benchFixtures) resourceMTLS() (func(*testing.B) error, error) {
	is, _, err := fx.mintingIssuer()
	if err != nil {
		return nil, err
	}
	ca, err := certs.NewCA(certs.Options{CommonName: "bench CA"})
	if err != nil {
		return nil, err
	}
	leaf, err := ca.Issue(certs.Options{CommonName: "bench-client", Client: true})
	if err != nil {
		return nil, err
	}
	tok, err := is.Mint(context.Background(), benchMintRequest(issuer.CertificateBinding(leaf.Cert)))
	if err != nil {
		return nil, err
	}
	v, err := fx.resourceVerifier(0, nil)
	if err != nil {
		return nil, err
	}
	r := httptest.NewRequest(http.MethodGet, benchTarget, nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf.Cert}}
	r.Header.Set("Authorization", "Bearer "+tok.Raw)
	return benchLoop(func() error {
		_, err := v.Check(r, benchPolicy)
		return err
	}), nil
}
