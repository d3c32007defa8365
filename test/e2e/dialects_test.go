package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2/clientcredentials"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/testenv"
)

// deviceLoginClientID is the client the device login dialect's tokens name
// (the server's --device-login-client).
const deviceLoginClientID = "e2e-mobile-app"

// applyFixtures creates one OAuthClient per dialect and a User, unless an
// earlier test did, and waits until all are Ready.
func applyFixtures(t *testing.T) (session, v1, mobile map[string]string, password string) {
	t.Helper()
	ctx := context.Background()
	objs := []*authv1alpha1.OAuthClient{
		{ObjectMeta: metav1.ObjectMeta{Name: "game", Namespace: "default"}, Spec: authv1alpha1.OAuthClientSpec{
			GrantTypes: []authv1alpha1.GrantType{authv1alpha1.GrantSession}, NumericID: ptr.To[int64](4242)}},
		{ObjectMeta: metav1.ObjectMeta{Name: "billing", Namespace: "default"}, Spec: authv1alpha1.OAuthClientSpec{
			GrantTypes: []authv1alpha1.GrantType{authv1alpha1.GrantClientCredentials}, TokenFormat: authv1alpha1.TokenFormatOpaque,
			Scopes: []string{"invoices:read"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "mobile", Namespace: "default"}, Spec: authv1alpha1.OAuthClientSpec{
			ClientID:   deviceLoginClientID,
			GrantTypes: []authv1alpha1.GrantType{authv1alpha1.GrantPassword, authv1alpha1.GrantRefreshToken, authv1alpha1.GrantClientCredentials},
			Scopes:     []string{"read", "write"}}},
	}
	user := &authv1alpha1.User{ObjectMeta: metav1.ObjectMeta{Name: "alice", Namespace: "default"},
		Spec: authv1alpha1.UserSpec{Username: "alice@example.com", Scopes: []string{"read", "write"}}}
	// Tests that need the fixtures call this in any order; the first creates them.
	for _, o := range append([]client.Object{user}, objs[0], objs[1], objs[2]) {
		if err := suite.k8s.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	for _, o := range objs {
		waitClientReady(t, o.Namespace, o.Name)
	}
	u := waitUserReady(t, "default", "alice")
	session = readSecret(t, "default", "game-credentials")
	v1 = readSecret(t, "default", "billing-credentials")
	mobile = readSecret(t, "default", "mobile-credentials")
	password = readSecret(t, "default", u.Status.PasswordSecretName)["password"]
	return session, v1, mobile, password
}

// TestEveryDialectIssuesTokensFromControllerCredentials is the end-to-end path
// a user takes: apply objects, read the consumer Secrets, get tokens from each
// of the four documented APIs, and verify them.
func TestEveryDialectIssuesTokensFromControllerCredentials(t *testing.T) {
	session, v1, mobile, password := applyFixtures(t)

	t.Run("session API answers a JWT signed HS512", func(t *testing.T) {
		r := servedAtReady(t, "the session client", postJSON(t, "/api/auth/session/4242", map[string]string{"api_key": session["API_KEY"], "secret": session["API_SECRET"]}))
		tok, _ := r.json(t)["token"].(string)
		remember(tok)
		header := testenv.JWTPart(t, tok, 0)
		if header["alg"] != "HS512" || header["kid"] == "" {
			t.Fatalf("session token header = %v, want alg HS512 and a kid", header)
		}
	})

	t.Run("client-credentials v1 answers an opaque sk- token with the client's TTL", func(t *testing.T) {
		r := postForm(t, "/v1/auth/token", url.Values{"client_id": {v1["CLIENT_ID"]}, "client_secret": {v1["CLIENT_SECRET"]}})
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		var body struct {
			Data struct {
				AccessToken string `json:"access_token"`
				TokenType   string `json:"token_type"`
				ExpiresIn   int    `json:"expires_in"`
			} `json:"data"`
		}
		_ = json.Unmarshal(r.body, &body)
		remember(body.Data.AccessToken)
		if !strings.HasPrefix(body.Data.AccessToken, "sk-") || body.Data.TokenType != "Bearer" || body.Data.ExpiresIn != 3600 {
			t.Fatalf("body = %s", r.body)
		}
		if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Pragma") != "no-cache" {
			t.Fatalf("token response is cacheable: %v", r.header)
		}
	})

	t.Run("device login answers a 30-day token as documented", func(t *testing.T) {
		q := url.Values{"username": {"alice@example.com"}, "password": {password}, "device-info": {"e2e-laptop"}}
		req, _ := http.NewRequest(http.MethodPost, suite.baseURL+"/v1/oauth/?"+q.Encode(), nil)
		r := do(t, req)
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		var body struct {
			Success bool `json:"success"`
			Data    struct {
				AccessToken string `json:"access_token"`
				Expiry      int64  `json:"expiry"`
			} `json:"data"`
		}
		_ = json.Unmarshal(r.body, &body)
		remember(body.Data.AccessToken)
		want := time.Now().Add(30 * 24 * time.Hour).Unix()
		if !body.Success || body.Data.AccessToken == "" || body.Data.Expiry < want-60 || body.Data.Expiry > want+60 {
			t.Fatalf("body = %s", r.body)
		}
		eventually(t, 5*time.Second, "the new device in the User's status (written by the server's ServiceAccount)", func() bool {
			var u authv1alpha1.User
			if err := suite.k8s.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "alice"}, &u); err != nil {
				return false
			}
			for _, d := range u.Status.Devices {
				if d.Name == "e2e-laptop" {
					return true
				}
			}
			return false
		})
	})

	t.Run("OAuth 2.0 password grant answers JWTs that verify through the JWKS", func(t *testing.T) {
		r := postForm(t, "/oauth/token", url.Values{
			"grant_type": {"password"}, "client_id": {mobile["CLIENT_ID"]}, "client_secret": {mobile["CLIENT_SECRET"]},
			"username": {"alice@example.com"}, "password": {password}, "scope": {""},
		})
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		body := r.json(t)
		access, _ := body["access_token"].(string)
		refresh, _ := body["refresh_token"].(string)
		remember(access, refresh)
		if body["token_type"] != "Bearer" || refresh == "" || body["expires_in"] == nil {
			t.Fatalf("body = %s", r.body)
		}
		claims := verifyWithJWKS(t, access)
		if claims["sub"] != "alice@example.com" || claims["client_id"] != deviceLoginClientID || claims["iss"] != "https://tokensmith.test" {
			t.Fatalf("claims = %v", claims)
		}

		r = postForm(t, "/oauth/token", url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "scope": {"read"},
			"client_id": {mobile["CLIENT_ID"]}, "client_secret": {mobile["CLIENT_SECRET"]},
		})
		if r.status != http.StatusOK {
			t.Fatalf("refresh: status %d: %s", r.status, r.body)
		}
		narrowed, _ := r.json(t)["access_token"].(string)
		remember(narrowed)
		if got := verifyWithJWKS(t, narrowed)["scope"]; got != "read" {
			t.Fatalf("refreshed scope = %v, want read", got)
		}
	})

	t.Run("golang.org/x/oauth2 clientcredentials gets a token", func(t *testing.T) {
		cfg := clientcredentials.Config{ClientID: mobile["CLIENT_ID"], ClientSecret: mobile["CLIENT_SECRET"], TokenURL: suite.baseURL + "/oauth/token", Scopes: []string{"read"}}
		tok, err := cfg.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		remember(tok.AccessToken)
		if got := verifyWithJWKS(t, tok.AccessToken)["scope"]; got != "read" {
			t.Fatalf("scope = %v", got)
		}
	})
}

// verifyWithJWKS checks a JWT with an independent JWKS client library, the
// way a resource server would, and returns its claims.
func verifyWithJWKS(t *testing.T, token string) jwt.MapClaims {
	t.Helper()
	kf, err := keyfunc.NewDefaultCtx(context.Background(), []string{suite.baseURL + "/.well-known/jwks.json"})
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(token, claims, kf.Keyfunc, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer("https://tokensmith.test")); err != nil {
		t.Fatalf("JWT does not verify through the JWKS: %v", err)
	}
	return claims
}

// TestResourceServersCanCheckTokens takes a token from the running binaries and
// checks it the ways resource servers and ingress controllers do, then revokes it.
func TestResourceServersCanCheckTokens(t *testing.T) {
	ctx := context.Background()
	rs := &authv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "orders-api", Namespace: "default"},
		Spec: authv1alpha1.OAuthClientSpec{GrantTypes: []authv1alpha1.GrantType{authv1alpha1.GrantClientCredentials}, Scopes: []string{"orders"}}}
	if err := suite.k8s.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	waitClientReady(t, "default", "orders-api")
	creds := readSecret(t, "default", "orders-api-credentials")
	r := servedAtReady(t, "orders-api", postForm(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {creds["CLIENT_ID"]}, "client_secret": {creds["CLIENT_SECRET"]}}))
	token, _ := r.json(t)["access_token"].(string)
	remember(token)

	introspect := func() map[string]any {
		req, _ := http.NewRequest(http.MethodPost, suite.baseURL+"/oauth/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(creds["CLIENT_ID"], creds["CLIENT_SECRET"])
		return do(t, req).json(t)
	}
	verify := func(scope string) response {
		req, _ := http.NewRequest(http.MethodGet, suite.baseURL+"/auth/verify?scope="+url.QueryEscape(scope), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return do(t, req)
	}
	if got := introspect(); got["active"] != true || got["client_id"] != creds["CLIENT_ID"] || got["scope"] != "orders" {
		t.Fatalf("introspection = %v", got)
	}
	if v := verify("orders"); v.status != http.StatusOK || v.header.Get("X-Auth-Client") != creds["CLIENT_ID"] || v.header.Get("X-Auth-Scopes") != "orders" {
		t.Fatalf("forward-auth = %d %v", v.status, v.header)
	}
	if v := verify("admin"); v.status != http.StatusForbidden {
		t.Fatalf("forward-auth with a missing scope = %d, want 403", v.status)
	}

	req, _ := http.NewRequest(http.MethodPost, suite.baseURL+"/oauth/revoke", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(creds["CLIENT_ID"], creds["CLIENT_SECRET"])
	if rr := do(t, req); rr.status != http.StatusOK {
		t.Fatalf("revoke = %d %s", rr.status, rr.body)
	}
	eventually(t, time.Second, "the revoked token to be inactive", func() bool {
		got := introspect()
		return len(got) == 1 && got["active"] == false
	})
	if v := verify(""); v.status != http.StatusUnauthorized || !strings.Contains(v.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("forward-auth after revocation = %d %v", v.status, v.header)
	}
}
