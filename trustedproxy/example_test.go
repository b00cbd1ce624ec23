package trustedproxy_test

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/senderbound/senderbound/trustedproxy"
)

func ExampleNew() {
	proxies, err := trustedproxy.New(trustedproxy.Config{
		Peers:   []string{"10.0.0.0/24"},
		Headers: trustedproxy.HeadersXForwarded, // what the proxies set
	})
	if err != nil {
		panic(err)
	}
	r := &http.Request{RemoteAddr: "10.0.0.7:51234", Header: http.Header{}}
	r.Header.Set("X-Forwarded-Proto", "https")
	r.Header.Set("X-Forwarded-Host", "api.example.com")
	fmt.Println(proxies.Origin(r))

	// A Forwarded field the client sent, passed through by the proxy.
	r.Header.Set("Forwarded", "host=other.example.com")
	_, _, err = proxies.Origin(r)
	fmt.Println(errors.Is(err, trustedproxy.ErrUnexpectedHeaders))

	// The halves of the IPv4 space together trust every peer.
	_, err = trustedproxy.New(trustedproxy.Config{Peers: []string{"0.0.0.0/1", "128.0.0.0/1"}})
	fmt.Println(err)
	// Output:
	// https api.example.com <nil>
	// true
	// trustedproxy: invalid configuration: the trusted ranges together cover every IPv4 address
}
