package trustedproxy

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func mustNew(t testing.TB, cfg Config) *Set {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"cidr v4", Config{Peers: []string{"10.0.0.0/8"}}, false},
		{"single v4", Config{Peers: []string{"127.0.0.1"}}, false},
		{"single v6", Config{Peers: []string{"::1"}}, false},
		{"cidr v6", Config{Peers: []string{"fd00::/8"}}, false},
		{"Forwarded family", Config{Peers: []string{"10.0.0.0/8"}, Headers: HeadersForwarded}, false},
		{"no forwarded headers", Config{Peers: []string{"10.0.0.0/8"}, Headers: HeadersNone}, false},
		{"CCERT-15/no peers", Config{}, true},
		{"CCERT-15/empty peer list", Config{Peers: []string{}}, true},
		{"host bits set", Config{Peers: []string{"10.0.0.1/8"}}, true},
		{"empty", Config{Peers: []string{""}}, true},
		{"garbage", Config{Peers: []string{"example.com"}}, true},
		{"zone", Config{Peers: []string{"fe80::1%eth0"}}, true},
		{"unknown header family", Config{Peers: []string{"10.0.0.0/8"}, Headers: Headers(7)}, true},
		{"negative header family", Config{Peers: []string{"10.0.0.0/8"}, Headers: Headers(-1)}, true},
		// Sets that trust every peer of a family, whole or in pieces.
		{"CCERT-15/all IPv4", Config{Peers: []string{"0.0.0.0/0"}}, true},
		{"CCERT-15/all IPv6", Config{Peers: []string{"::/0"}}, true},
		{"CCERT-15/all mapped IPv4", Config{Peers: []string{"::ffff:0.0.0.0/96"}}, true},
		{"CCERT-15/IPv4 halves", Config{Peers: []string{"0.0.0.0/1", "128.0.0.0/1"}}, true},
		{"CCERT-15/IPv4 quarters and overlap", Config{Peers: []string{"10.0.0.0/8", "0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/2", "192.0.0.0/2"}}, true},
		{"CCERT-15/IPv4 bits 1 to 32", Config{Peers: ipv4Ladder()}, true},
		{"CCERT-15/IPv6 halves", Config{Peers: []string{"::/1", "8000::/1"}}, true},
		{"CCERT-15/mapped IPv4 halves", Config{Peers: []string{"::ffff:0:0/97", "::ffff:128.0.0.0/97"}}, true},
		{"CCERT-15/mapped and plain IPv4 halves", Config{Peers: []string{"::ffff:0:0/97", "128.0.0.0/1"}}, true},
		{"CCERT-15/IPv6 but the mapped block", Config{Peers: ipv6AllButMapped()}, true},
		{"half the IPv4 space is explicit, not a typo", Config{Peers: []string{"0.0.0.0/1"}}, false},
		{"IPv4 but one address", Config{Peers: ipv4AllButOne()}, false},
		{"CCERT-15/IPv6 half and quarters", Config{Peers: []string{"::/1", "8000::/2", "c000::/2", "0.0.0.0/1"}}, true},
		{"IPv6 ranges stop short of IPv6", Config{Peers: []string{"::/1", "8000::/2"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tc.cfg)
			if (err != nil) != tc.wantErr {
				t.Fatalf("New(%v) err = %v, wantErr %v", tc.cfg, err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

// ipv4Ladder covers IPv4 with 128.0.0.0/1, 64.0.0.0/2, … 0.0.0.1/32 and
// 0.0.0.0/32: 33 ranges, none of which covers more than half.
func ipv4Ladder() []string {
	out := []string{"0.0.0.0/32"}
	for bits := 1; bits <= 32; bits++ {
		a := netip.AddrFrom4([4]byte{})
		p := netip.PrefixFrom(setBit(a, bits-1), bits)
		out = append(out, p.String())
	}
	return out
}

// ipv4AllButOne is ipv4Ladder without 0.0.0.0/32.
func ipv4AllButOne() []string { return ipv4Ladder()[1:] }

// ipv6AllButMapped covers every IPv6 address except ::ffff:0:0/96, which
// no IPv6 peer can have (such peers are compared as IPv4).
func ipv6AllButMapped() []string {
	var out []string
	mapped := netip.MustParsePrefix("::ffff:0:0/96")
	p := netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	for p.Bits() < 96 {
		lo := netip.PrefixFrom(p.Addr(), p.Bits()+1)
		hi := netip.PrefixFrom(setBit(p.Addr(), p.Bits()), p.Bits()+1)
		if lo.Overlaps(mapped) {
			out, p = append(out, hi.String()), lo
		} else {
			out, p = append(out, lo.String()), hi
		}
	}
	return out
}

func TestTrustedPeer(t *testing.T) {
	t.Parallel()
	s := mustNew(t, Config{Peers: []string{"10.1.0.0/16", "::1", "::ffff:192.0.2.0/120"}})
	tests := []struct {
		remote string
		want   bool
	}{
		{"10.1.2.3:443", true},
		{"10.2.0.1:443", false},
		{"[::1]:8080", true},
		{"[::ffff:10.1.0.9]:1", true}, // mapped v4 compared as v4
		{"192.0.2.7:80", true},        // mapped prefix compared as v4
		{"192.0.3.7:80", false},
		{"127.0.0.1:80", false},
		{"", false},
		{"not-an-address", false},
		{"10.1.2.3", true}, // bare address
	}
	for _, tc := range tests {
		r := &http.Request{RemoteAddr: tc.remote}
		if got := s.TrustedPeer(r); got != tc.want {
			t.Errorf("TrustedPeer(%q) = %v, want %v", tc.remote, got, tc.want)
		}
	}
	var none *Set
	if none.TrustedPeer(&http.Request{RemoteAddr: "10.1.2.3:1"}) || none.Contains(netip.MustParseAddr("10.1.2.3")) {
		t.Error("nil Set trusted a peer")
	}
	if s.TrustedPeer(nil) {
		t.Error("nil request trusted")
	}
	if none.Prefixes() != nil || len(s.Prefixes()) != 3 || s.Prefixes()[2] != netip.MustParsePrefix("192.0.2.0/24") {
		t.Errorf("Prefixes() = %v / %v", none.Prefixes(), s.Prefixes())
	}
	zero := &Set{}
	if zero.TrustedPeer(&http.Request{RemoteAddr: "10.1.2.3:1"}) {
		t.Error("zero Set trusted a peer")
	}
	if none.Headers() != HeadersNone || zero.Headers() != HeadersNone || s.Headers() != HeadersXForwarded {
		t.Error("Headers() wrong")
	}
	if !none.Empty() || !zero.Empty() || s.Empty() {
		t.Error("Empty() wrong")
	}
}

func TestOrigin(t *testing.T) {
	t.Parallel()
	xf := mustNew(t, Config{Peers: []string{"127.0.0.1"}})
	fw := mustNew(t, Config{Peers: []string{"127.0.0.1"}, Headers: HeadersForwarded})
	none := mustNew(t, Config{Peers: []string{"127.0.0.1"}, Headers: HeadersNone})
	other := mustNew(t, Config{Peers: []string{"10.0.0.0/8"}})
	xfHeaders := http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"rs.example.test"}}
	tests := []struct {
		name       string
		s          *Set
		h          http.Header
		wantScheme string
		wantHost   string
		wantErr    error
	}{
		{"x-forwarded", xf, xfHeaders, "https", "rs.example.test", nil},
		{"x-forwarded last list value", xf, http.Header{"X-Forwarded-Proto": {"http, https"}, "X-Forwarded-Host": {"evil.example", "a.example, rs.example.test "}}, "https", "rs.example.test", nil},
		{"x-forwarded only proto", xf, http.Header{"X-Forwarded-Proto": {"https"}}, "https", "", nil},
		{"x-forwarded none sent", xf, nil, "", "", nil},
		{"x-forwarded ignores X-Forwarded-For", xf, http.Header{"X-Forwarded-For": {"192.0.2.1"}}, "", "", nil},
		{"x-forwarded refuses a client's Forwarded passed through", xf, http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"rs.example.test"}, "Forwarded": {"host=evil.example"}}, "", "", ErrUnexpectedHeaders},
		{"x-forwarded refuses Forwarded alone", xf, http.Header{"Forwarded": {"host=evil.example"}}, "", "", ErrUnexpectedHeaders},
		{"forwarded", fw, http.Header{"Forwarded": {`for=192.0.2.1;proto=https;host="rs.example.test"`}}, "https", "rs.example.test", nil},
		{"forwarded last element", fw, http.Header{"Forwarded": {"host=evil.example;proto=http", "for=x, host=rs.example.test;proto=https"}}, "https", "rs.example.test", nil},
		{"forwarded empty last element", fw, http.Header{"Forwarded": {"host=evil.example,"}}, "", "", nil},
		{"forwarded quoted IPv6 host and escapes", fw, http.Header{"Forwarded": {`host="[::1]:8443";proto="ht\tps";for="\"x\""`}}, "https", "[::1]:8443", nil},
		{"forwarded case-insensitive names", fw, http.Header{"Forwarded": {"Host=rs.example.test;PROTO=https"}}, "https", "rs.example.test", nil},
		{"forwarded refuses a client's X-Forwarded-Host passed through", fw, http.Header{"Forwarded": {"host=rs.example.test;proto=https"}, "X-Forwarded-Host": {"evil.example"}}, "", "", ErrUnexpectedHeaders},
		{"forwarded refuses X-Forwarded-Proto", fw, http.Header{"X-Forwarded-Proto": {"https"}}, "", "", ErrUnexpectedHeaders},
		{"forwarded repeated host", fw, http.Header{"Forwarded": {"host=a.example;host=b.example"}}, "", "", ErrMalformedHeader},
		{"forwarded repeated in earlier element", fw, http.Header{"Forwarded": {"proto=http;proto=https, host=rs.example.test"}}, "", "", ErrMalformedHeader},
		{"forwarded bad syntax", fw, http.Header{"Forwarded": {"host"}}, "", "", ErrMalformedHeader},
		{"forwarded unterminated quote", fw, http.Header{"Forwarded": {`host="rs.example.test`}}, "", "", ErrMalformedHeader},
		{"forwarded space in token", fw, http.Header{"Forwarded": {"host=rs example"}}, "", "", ErrMalformedHeader},
		{"forwarded empty value", fw, http.Header{"Forwarded": {"host=;proto=https"}}, "", "", ErrMalformedHeader},
		{"forwarded none sent", fw, nil, "", "", nil},
		{"none", none, nil, "", "", nil},
		{"none refuses Forwarded", none, http.Header{"Forwarded": {"host=evil.example"}}, "", "", ErrUnexpectedHeaders},
		{"none refuses X-Forwarded-Host", none, http.Header{"X-Forwarded-Host": {"evil.example"}}, "", "", ErrUnexpectedHeaders},
		{"untrusted peer", other, xfHeaders, "", "", ErrUntrustedPeer},
		{"nil set", nil, xfHeaders, "", "", ErrUntrustedPeer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &http.Request{RemoteAddr: "127.0.0.1:4711", Header: tc.h}
			if r.Header == nil {
				r.Header = http.Header{}
			}
			scheme, host, err := tc.s.Origin(r)
			if !errors.Is(err, tc.wantErr) || (err != nil) != (tc.wantErr != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if scheme != tc.wantScheme || host != tc.wantHost {
				t.Fatalf("Origin = %q %q, want %q %q", scheme, host, tc.wantScheme, tc.wantHost)
			}
			if err != nil && (strings.Contains(err.Error(), "evil") || strings.Contains(err.Error(), "example")) {
				t.Fatalf("error echoes the header: %v", err)
			}
		})
	}
}

func TestParseHeaders(t *testing.T) {
	t.Parallel()
	for _, h := range []Headers{HeadersXForwarded, HeadersForwarded, HeadersNone} {
		got, err := ParseHeaders(h.String())
		if err != nil || got != h {
			t.Errorf("ParseHeaders(%q) = %v, %v", h.String(), got, err)
		}
	}
	for _, s := range []string{"", "X-Forwarded", "x-forwarded-for", "Forwarded", "both", "Headers(3)"} {
		if _, err := ParseHeaders(s); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("ParseHeaders(%q) err = %v", s, err)
		}
	}
	if got := Headers(9).String(); got != "Headers(9)" {
		t.Errorf("String() = %q", got)
	}
}

// FuzzForwarded holds the Forwarded parser to its contract on any input:
// no panic; on error, empty results wrapping ErrMalformedHeader; on
// success, results that are substrings of the input when unescaped values
// cannot be involved, and never longer than it.
func FuzzForwarded(f *testing.F) {
	for _, s := range []string{
		`for=192.0.2.43;proto=https;host=rs.example.test`,
		`for="[2001:db8:cafe::17]:4711";host="[::1]:8443"`,
		`for=192.0.2.60;proto=http;by=203.0.113.43, for=198.51.100.17`,
		`host="a\"b";proto=https`,
		`host=a;host=b`,
		`,`,
		`;;`,
		`host=`,
		`"`,
		"host=\"\x7f\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		proto, host, err := lastForwarded(v)
		if err != nil {
			if proto != "" || host != "" || !errors.Is(err, ErrMalformedHeader) {
				t.Fatalf("error %v with results %q %q", err, proto, host)
			}
			return
		}
		if len(proto) > len(v) || len(host) > len(v) {
			t.Fatalf("results longer than input")
		}
		if !strings.Contains(v, `\`) && (!strings.Contains(v, proto) || !strings.Contains(v, host)) {
			t.Fatalf("results %q %q not from input %q", proto, host, v)
		}
	})
}
