package grpcresource_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/senderbound/senderbound/resource"
	"github.com/senderbound/senderbound/resource/grpcresource"
)

// The interceptor on a call with a bearer token: admitted where the policy
// allows it, refused with PermissionDenied and the challenge in metadata
// where the method needs a scope the token lacks. On a server, install
// in.Unary() and in.Stream() with grpc.UnaryInterceptor and
// grpc.StreamInterceptor.
func Example() {
	now := time.Unix(1_900_000_000, 0)
	// A fixed P-256 key (RFC 7517 Appendix A.2) keeps the output stable.
	d, _ := new(big.Int).SetString("f3bd0c07a81fb932781ed52752f60cc89a6be5e51934fe01938ddb55d8f77801", 16)
	key := &ecdsa.PrivateKey{D: d}
	key.Curve = elliptic.P256()
	key.X, key.Y = elliptic.P256().ScalarBaseMult(d.Bytes())

	keys, _ := resource.NewStaticKeySet(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256"}}})
	v, err := resource.New(resource.Config{
		Algorithms: resource.DefaultAlgorithms(),
		Issuers:    []resource.Issuer{{Identifier: "https://as.example.com", Keys: keys}},
		Audience:   "https://api.example.com",
		Now:        func() time.Time { return now },
	})
	if err != nil {
		panic(err)
	}
	in, err := grpcresource.New(grpcresource.Config{
		Verifier: v,
		Default:  resource.Policy{Accept: resource.AcceptAny},
		Methods: map[string]resource.Policy{
			"/orders.v1.Orders/Cancel": {Accept: resource.AcceptAny, Scopes: []string{"orders:write"}},
		},
	})
	if err != nil {
		panic(err)
	}

	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	claims, _ := json.Marshal(map[string]any{
		"iss": "https://as.example.com", "aud": "https://api.example.com", "sub": "bob", "client_id": "app",
		"jti": "t-1", "scope": "orders:read", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
	})
	jws, _ := signer.Sign(claims)
	token, _ := jws.CompactSerialize()

	// What the server's transport hands the interceptor.
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(
		":authority", "api.example.com", "authorization", "Bearer "+token))
	handler := func(ctx context.Context, _ any) (any, error) {
		return "hello " + resource.PrincipalFromContext(ctx).Subject, nil
	}
	for _, method := range []string{"/orders.v1.Orders/List", "/orders.v1.Orders/Cancel"} {
		out, err := in.Unary()(ctx, nil, &grpc.UnaryServerInfo{FullMethod: method}, handler)
		fmt.Println(method, out, err)
	}

	// The same refusal, step by step.
	_, err = v.Check(grpcresource.Request(ctx, "/orders.v1.Orders/Cancel"), resource.Policy{Accept: resource.AcceptAny, Scopes: []string{"orders:write"}})
	var re *resource.Error
	if errors.As(err, &re) {
		fmt.Println(grpcresource.Code(err))
		fmt.Println(grpcresource.Metadata(re).Get("www-authenticate")[0])
	}
	// Output:
	// /orders.v1.Orders/List hello bob <nil>
	// /orders.v1.Orders/Cancel <nil> rpc error: code = PermissionDenied desc = insufficient_scope: the access token lacks a required scope
	// PermissionDenied
	// Bearer realm="https://api.example.com", error="insufficient_scope", error_description="the access token lacks a required scope", scope="orders:write"
}
