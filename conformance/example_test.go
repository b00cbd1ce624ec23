package conformance_test

import (
	"context"
	"fmt"

	"github.com/senderbound/senderbound/conformance"
	"github.com/senderbound/senderbound/conformance/internal/refserver"
)

func ExampleRun() {
	srv, err := refserver.Start(refserver.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	target := conformance.Target{
		TokenEndpoint: srv.AS.URL + "/token",
		ClientID:      refserver.ClientID,
		ClientSecret:  refserver.ClientSecret,
		Resource:      srv.RS.URL + "/resource",
		RootCAs:       srv.RootCAs,
	}
	rep, err := conformance.Run(context.Background(), target, conformance.Options{
		Cases: []string{"DPOP-RS-05", "DPOP-RS-19", "ATV-15"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range rep.Results {
		fmt.Println(r.ID, r.Status)
	}
	fmt.Println("failed:", rep.Failed())
	// Output:
	// DPOP-RS-05 pass
	// DPOP-RS-19 pass
	// ATV-15 skip
	// failed: false
}

func ExampleParseChallenges() {
	cs, err := conformance.ParseChallenges([]string{
		`Bearer error="invalid_token", error_description="Invalid token", DPoP algs="ES256 PS256"`,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range cs {
		e, _ := c.Param("error")
		a, _ := c.Param("algs")
		fmt.Printf("%s error=%q algs=%q\n", c.Scheme, e, a)
	}
	// Output:
	// Bearer error="invalid_token" algs=""
	// DPoP error="" algs="ES256 PS256"
}

func ExampleCases() {
	n := 0
	for _, c := range conformance.Cases() {
		if c.Select([]string{"DPOP-RS-0"}) {
			n++
		}
	}
	fmt.Println(n, "cases match DPOP-RS-0")
	// Output: 9 cases match DPOP-RS-0
}
