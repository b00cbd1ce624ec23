package trustedproxy

import (
	"net/http"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      []string
		wantErr bool
	}{
		{"cidr v4", []string{"10.0.0.0/8"}, false},
		{"single v4", []string{"127.0.0.1"}, false},
		{"single v6", []string{"::1"}, false},
		{"cidr v6", []string{"fd00::/8"}, false},
		{"host bits set", []string{"10.0.0.1/8"}, true},
		{"empty", []string{""}, true},
		{"garbage", []string{"example.com"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Parse(%q) err = %v, wantErr %v", tc.in, err, tc.wantErr)
			}
		})
	}
}

func TestTrustedPeer(t *testing.T) {
	t.Parallel()
	s, err := Parse([]string{"10.1.0.0/16", "::1", "::ffff:192.0.2.0/120"})
	if err != nil {
		t.Fatal(err)
	}
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
	var zero Set
	if zero.TrustedPeer(&http.Request{RemoteAddr: "10.1.2.3:1"}) {
		t.Error("zero Set trusted a peer")
	}
	if !zero.Empty() || s.Empty() {
		t.Error("Empty() wrong")
	}
}
