package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
)

// TestFailedRequestsNeverEchoCredentials sends real credentials and tokens in
// the wrong places, to every dialect and resource endpoint, and checks that
// each is refused with a 4xx. Every body is kept (see do) and searched by the
// suite's leak check for every credential and token, so an error message that
// quotes what it was given fails the run.
func TestFailedRequestsNeverEchoCredentials(t *testing.T) {
	ctx := context.Background()
	applyFixtures(t) // the device login dialect logs in for their mobile client
	oc := &authv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "default"}, Spec: authv1alpha1.OAuthClientSpec{
		GrantTypes: []authv1alpha1.GrantType{authv1alpha1.GrantPassword, authv1alpha1.GrantRefreshToken, authv1alpha1.GrantClientCredentials, authv1alpha1.GrantSession},
		NumericID:  ptr.To[int64](4343), Scopes: []string{"read"}}}
	user := &authv1alpha1.User{ObjectMeta: metav1.ObjectMeta{Name: "echo-user", Namespace: "default"},
		Spec: authv1alpha1.UserSpec{Username: "echo@example.com", Clients: []string{"echo-app"}}}
	oc.Spec.ClientID = "echo-app"
	if err := suite.k8s.Create(ctx, oc); err != nil {
		t.Fatal(err)
	}
	if err := suite.k8s.Create(ctx, user); err != nil {
		t.Fatal(err)
	}
	waitClientReady(t, "default", "echo")
	u := waitUserReady(t, "default", "echo-user")
	creds := readSecret(t, "default", "echo-credentials")
	password := readSecret(t, "default", u.Status.PasswordSecretName)["password"]
	id, secret := creds["CLIENT_ID"], creds["CLIENT_SECRET"]

	body := servedAtReady(t, "the new client", postForm(t, "/oauth/token", url.Values{"grant_type": {"password"}, "client_id": {id}, "client_secret": {secret},
		"username": {"echo@example.com"}, "password": {password}})).json(t)
	access, _ := body["access_token"].(string)
	refresh, _ := body["refresh_token"].(string)
	remember(access, refresh)

	bearer := func(path, token string) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, suite.baseURL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return req
	}
	deviceLogin := func(username, pw string) *http.Request {
		q := url.Values{"username": {username}, "password": {pw}, "device-info": {"echo-device"}}
		req, _ := http.NewRequest(http.MethodPost, suite.baseURL+"/v1/oauth/?"+q.Encode(), nil)
		return req
	}
	cases := map[string]func() response{
		"session: the right secret for another numeric id": func() response {
			return postJSON(t, "/api/auth/session/4242", map[string]string{"api_key": id, "secret": secret})
		},
		"session: the secret as the api key": func() response {
			return postJSON(t, "/api/auth/session/4343", map[string]string{"api_key": secret, "secret": id})
		},
		"v1: the secret as the client id": func() response {
			return postForm(t, "/v1/auth/token", url.Values{"client_id": {secret}, "client_secret": {secret}})
		},
		"v1: the password as the secret": func() response {
			return postForm(t, "/v1/auth/token", url.Values{"client_id": {id}, "client_secret": {password}})
		},
		"device login: the password as the username": func() response { return do(t, deviceLogin(password, password)) },
		"device login: the client secret as the password": func() response {
			return do(t, deviceLogin("echo@example.com", secret))
		},
		"oauth2: the password as the username": func() response {
			return postForm(t, "/oauth/token", url.Values{"grant_type": {"password"}, "client_id": {id}, "client_secret": {secret},
				"username": {password}, "password": {password}})
		},
		"oauth2: an access token presented as a refresh token": func() response {
			return postForm(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {id}, "client_secret": {secret},
				"refresh_token": {access}})
		},
		"oauth2: the refresh token as the client secret": func() response {
			return postForm(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {refresh}})
		},
		"oauth2: an unknown grant type named by a secret": func() response {
			return postForm(t, "/oauth/token", url.Values{"grant_type": {secret}, "client_id": {id}, "client_secret": {secret}})
		},
		"oauth2: a scope named by the password": func() response {
			return postForm(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret},
				"scope": {password}})
		},
		"introspect: the right token with the wrong client secret": func() response {
			return postForm(t, "/oauth/introspect", url.Values{"token": {access}, "client_id": {id}, "client_secret": {password}})
		},
		"revoke: the refresh token with the access token as the secret": func() response {
			return postForm(t, "/oauth/revoke", url.Values{"token": {refresh}, "client_id": {id}, "client_secret": {access}})
		},
		"forward auth: the client secret as a bearer token": func() response { return do(t, bearer("/auth/verify", secret)) },
		"forward auth: the refresh token as a bearer token": func() response { return do(t, bearer("/auth/verify", refresh)) },
		"forward auth: a tampered access token": func() response {
			return do(t, bearer("/auth/verify", access[:len(access)-4]+strings.Repeat("A", 4)))
		},
	}
	for name, send := range cases {
		t.Run(name, func(t *testing.T) {
			r := send()
			if r.status < 400 || r.status > 499 {
				t.Fatalf("status %d, want a 4xx: %s", r.status, r.body)
			}
		})
	}
}
