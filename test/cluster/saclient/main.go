// Command saclient is the workload of the one-node cluster test's "no Secret
// at all" step: a pod with no Secret mounted, only a projected ServiceAccount
// token, gets an access token from the token Service with
// golang.org/x/oauth2/clientcredentials (the token as an RFC 7523 client
// assertion in EndpointParams) and verifies it with the JWKS, as a workload
// and its resource server would. It prints one JSON line and exits 0 on
// success. It is built into an image by test/cluster (the cluster can pull
// nothing); it is not part of the product.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2/clientcredentials"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "saclient:", err)
		os.Exit(1)
	}
}

func run() error {
	tokenURL, issuer, tokenFile := os.Getenv("TOKEN_URL"), os.Getenv("ISSUER"), os.Getenv("SA_TOKEN_FILE")
	if tokenURL == "" || issuer == "" || tokenFile == "" {
		return fmt.Errorf("TOKEN_URL, ISSUER and SA_TOKEN_FILE are required")
	}
	assertion, err := os.ReadFile(tokenFile) // the kubelet rotates it: read it per request
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cc := clientcredentials.Config{
		TokenURL: tokenURL,
		Scopes:   []string{os.Getenv("SCOPE")},
		EndpointParams: url.Values{
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {string(assertion)},
		},
	}
	tok, err := cc.Token(ctx)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}

	u, err := url.Parse(tokenURL)
	if err != nil {
		return err
	}
	u.Path = "/.well-known/jwks.json"
	resp, err := http.Get(u.String())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	jwks, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	kf, err := keyfunc.NewJWKSetJSON(jwks)
	if err != nil {
		return fmt.Errorf("JWKS: %w", err)
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(tok.AccessToken, claims, kf.Keyfunc, jwt.WithValidMethods([]string{"ES256"}),
		jwt.WithIssuer(issuer), jwt.WithExpirationRequired()); err != nil {
		return fmt.Errorf("the access token does not verify with the JWKS: %w", err)
	}
	// The claims, never the token, go to the log.
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"verified": true, "client_id": claims["client_id"], "scope": claims["scope"], "iss": claims["iss"]})
}
