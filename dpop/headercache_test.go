package dpop

import (
	"crypto"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// x5cPB returns a proof builder for key name (alg) whose header carries
// x5c strings: the same name and strings give the same header bytes.
func x5cPB(tb testing.TB, name, alg string, x5c ...string) *pb {
	tb.Helper()
	b := newPB(tb)
	k := keys(tb)[name]
	b.key, b.alg = k, alg
	b.hdr["alg"] = alg
	b.hdr["jwk"] = jwkMap(tb, k)
	b.hdr["x5c"] = x5c
	return b
}

func headerSeg(proof string) []byte { return []byte(proof[:strings.IndexByte(proof, '.')]) }

func encodedExpect() Expect {
	e := defaultExpect()
	e.X5C, e.X5CEncoded = true, true
	return e
}

// TestHeaderCacheHit: a header with x5c that passed is remembered only for
// callers that take x5c as sent, by the exact bytes of its segment; a hit
// gives what parsing gives (key, thumbprint, alg, strings), and the
// caller's copy of the strings is its own.
func TestHeaderCacheHit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, alg string }{{"ES256", "ES256"}, {"RSA", "PS256"}, {"RSA", "RS256"}, {"EdDSA", "EdDSA"}} {
		t.Run(tc.alg, func(t *testing.T) {
			t.Parallel()
			v := testVerifier(t, nil)
			b := x5cPB(t, tc.name, tc.alg, "AQID", "+/8=")
			first := b.build(t)
			seg := headerSeg(first)
			withDecoded := defaultExpect()
			withDecoded.X5C = true
			if _, err := v.Check(first, withDecoded); err != nil {
				t.Fatal(err)
			}
			if v.headers.get(seg) != nil {
				t.Fatal("cached without Expect.X5CEncoded")
			}
			miss, err := v.Check(first, encodedExpect())
			if err != nil {
				t.Fatal(err)
			}
			if v.headers.get(seg) == nil {
				t.Fatal("not cached after it passed")
			}
			miss.X5CEncoded[0] = "changed by the caller"
			b.cl["jti"] = "second proof"
			hit, err := v.Check(b.build(t), encodedExpect())
			if err != nil {
				t.Fatal(err)
			}
			fresh, err := testVerifier(t, nil).Check(first, encodedExpect())
			if err != nil {
				t.Fatal(err)
			}
			if hit.JKT != fresh.JKT || hit.Algorithm != fresh.Algorithm || fmt.Sprint(hit.X5CEncoded) != "[AQID +/8=]" ||
				!fresh.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(hit.PublicKey) {
				t.Fatalf("hit %+v, parsed %+v", hit, fresh)
			}
			if hit.JTI != "second proof" {
				t.Fatal("the hit did not read its own claims")
			}
		})
	}
}

// TestHeaderCacheRefusals: a proof whose header is cached is refused for
// everything that is not the header's, with the error a verifier without
// the entry gives: another signing key, another bound key (cnf.jkt), bad
// claims, a bad signature; a header that fails is not remembered.
func TestHeaderCacheRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		edit   func(t *testing.T, b *pb)
		expect func(e *Expect)
		want   error
		why    reason
	}{
		{name: "signed by another key with the cached jwk", edit: func(t *testing.T, b *pb) { b.key = keys(t)["ES256b"] }, want: ErrInvalidProof, why: rSignature},
		{name: "another bound key", expect: func(e *Expect) { e.JKT = strings.Repeat("A", 43) }, want: ErrKeyMismatch, why: rKeyMismatch},
		{name: "htm", edit: func(t *testing.T, b *pb) { b.cl["htm"] = "POST" }, want: ErrInvalidProof, why: rHTM},
		{name: "claims not JSON", edit: func(t *testing.T, b *pb) { b.rawPayload = "{" }, want: ErrInvalidProof, why: rPayloadJSON},
		{name: "no jti", edit: func(t *testing.T, b *pb) { delete(b.cl, "jti") }, want: ErrInvalidProof, why: rClaimMissing},
		{name: "payload not base64url", edit: post(func(p string) string {
			i := strings.IndexByte(p, '.')
			return p[:i+1] + "*" + p[i+2:]
		}), want: ErrInvalidProof, why: rBase64},
		{name: "signature bit flipped", edit: post(func(p string) string {
			i := strings.LastIndexByte(p, '.')
			c := byte('A')
			if p[i+1] == 'A' {
				c = 'B'
			}
			return p[:i+1] + string(c) + p[i+2:]
		}), want: ErrInvalidProof, why: rSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := testVerifier(t, nil)
			warm := x5cPB(t, "ES256", "ES256", "AQID").build(t)
			if _, err := v.Check(warm, encodedExpect()); err != nil {
				t.Fatal(err)
			}
			b := x5cPB(t, "ES256", "ES256", "AQID")
			if tc.edit != nil {
				tc.edit(t, b)
			}
			proof := b.build(t)
			if v.headers.get(headerSeg(proof)) == nil {
				t.Fatal("the header is not the cached one")
			}
			want := encodedExpect()
			if tc.expect != nil {
				tc.expect(&want)
			}
			_, err := v.Check(proof, want)
			_, errFresh := testVerifier(t, nil).Check(proof, want)
			got, _ := reasonOf(err)
			if !errors.Is(err, tc.want) || got != tc.why {
				t.Fatalf("hit: %v (%s), want %v (%s)", err, got, tc.want, tc.why)
			}
			if errFresh == nil || err.Error() != errFresh.Error() {
				t.Fatalf("hit: %v; without the entry: %v", err, errFresh)
			}
		})
	}
	t.Run("failing headers are not remembered", func(t *testing.T) {
		t.Parallel()
		v := testVerifier(t, nil)
		for _, b := range []*pb{
			x5cPB(t, "ES256", "ES256"),         // empty x5c: refused by Check
			x5cPB(t, "ES512", "ES512", "AQID"), // alg not configured
			func() *pb { b := x5cPB(t, "ES256", "ES256", "AQID"); b.key = keys(t)["ES256b"]; return b }(),
		} {
			proof := b.build(t)
			if _, err := v.Check(proof, encodedExpect()); err == nil {
				t.Fatal("accepted")
			}
			if v.headers.get(headerSeg(proof)) != nil {
				t.Fatal("a failing header was remembered")
			}
		}
		plain := newPB(t).build(t)
		if _, err := v.Check(plain, defaultExpect()); err != nil {
			t.Fatal(err)
		}
		if v.headers.get(headerSeg(plain)) != nil {
			t.Fatal("a header without x5c was remembered")
		}
	})
}

// TestHeaderCacheExactBytes: an entry answers only for the segment it was
// stored with, even in the slot of another segment, and a new header
// replaces the one in its slot.
func TestHeaderCacheExactBytes(t *testing.T) {
	t.Parallel()
	c := newHeaderCache()
	a, b := []byte("eyJhIjoxfQ"), []byte("eyJhIjoyfQ")
	c.put(a, &headerEntry{alg: "ES256"})
	if e := c.get(a); e == nil || e.alg != "ES256" {
		t.Fatal("entry not found")
	}
	if c.get(b) != nil {
		t.Fatal("another segment found an entry")
	}
	// b's entry stored in a's slot: a no longer finds one, b does not
	// either (it is not in its own slot unless they share it).
	c.slot(a).Store(&headerEntry{seg: string(b)})
	if c.get(a) != nil {
		t.Fatal("an entry of other bytes answered")
	}
	c.put(a, &headerEntry{alg: "EdDSA"})
	if e := c.get(a); e == nil || e.alg != "EdDSA" {
		t.Fatal("the slot was not replaced")
	}
}

// TestHeaderCacheConcurrent: goroutines checking proofs of more clients
// than slots, each header presented several times, all get their own key
// and strings (run with -race).
func TestHeaderCacheConcurrent(t *testing.T) {
	t.Parallel()
	v := testVerifier(t, nil)
	const clients = headerCacheSlots + 16
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		b := x5cPB(t, []string{"ES256", "ES256b"}[i%2], "ES256", fmt.Sprintf("AQ%02d", i))
		proofs := []string{b.build(t), b.build(t), b.build(t)}
		want := "[" + fmt.Sprintf("AQ%02d", i) + "]"
		wg.Add(1)
		go func() {
			defer wg.Done()
			var jkt string
			for _, proof := range proofs {
				p, err := v.Check(proof, encodedExpect())
				if err != nil {
					errs <- err
					return
				}
				if fmt.Sprint(p.X5CEncoded) != want || jkt != "" && p.JKT != jkt {
					errs <- fmt.Errorf("client %s got %v, %s", want, p.X5CEncoded, p.JKT)
					return
				}
				jkt = p.JKT
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
