package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
)

// Issue 15, finding 2: deleting a User or an OAuthClient must end its tokens
// for good. Before the fix, a User re-created in another namespace under the
// deleted one's username (or an OAuthClient under the deleted one's client id)
// started again at credential generation 1, and every old token, refresh
// token included, came back to life with the old scopes.
func TestDeletedObjectsTakeTheirTokensWithThem(t *testing.T) {
	_, _, mobile, _ := applyFixtures(t)
	ctx := context.Background()
	for _, ns := range []string{"team-a", "team-b"} {
		if err := suite.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	// rs is a resource server: any OAuthClient may introspect.
	introspect := func(token string) map[string]any {
		req, _ := http.NewRequest(http.MethodPost, suite.baseURL+"/oauth/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(mobile["CLIENT_ID"], mobile["CLIENT_SECRET"])
		r := do(t, req)
		if r.status != http.StatusOK {
			t.Fatalf("introspection answered %d: %s", r.status, r.body)
		}
		return r.json(t)
	}
	verify := func(token string) response {
		req, _ := http.NewRequest(http.MethodGet, suite.baseURL+"/auth/verify", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return do(t, req)
	}
	tokenRequest := func(id, secret string, form url.Values) response {
		req, _ := http.NewRequest(http.MethodPost, suite.baseURL+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		return do(t, req)
	}
	tokens := func(r response) (access, refresh string) {
		t.Helper()
		if r.status != http.StatusOK {
			t.Fatalf("token request answered %d: %s", r.status, r.body)
		}
		var body struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		_ = json.Unmarshal(r.body, &body)
		remember(body.AccessToken, body.RefreshToken)
		return body.AccessToken, body.RefreshToken
	}
	deleteAndWait := func(obj client.Object) {
		t.Helper()
		if err := suite.k8s.Delete(ctx, obj); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "the deleted object to be gone", func() bool {
			return apierrors.IsNotFound(suite.k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj))
		})
	}

	t.Run("a User re-created under a deleted one's username inherits none of its tokens", func(t *testing.T) {
		portal := &authv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "portal", Namespace: "team-a"}, Spec: authv1alpha1.OAuthClientSpec{
			GrantTypes: []authv1alpha1.GrantType{authv1alpha1.GrantPassword, authv1alpha1.GrantRefreshToken}, Scopes: []string{"read", "admin"}}}
		carol := &authv1alpha1.User{ObjectMeta: metav1.ObjectMeta{Name: "carol", Namespace: "team-a"},
			Spec: authv1alpha1.UserSpec{Username: "carol@corp.test", Scopes: []string{"read", "admin"}}}
		for _, o := range []client.Object{portal, carol} {
			if err := suite.k8s.Create(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		waitClientReady(t, "team-a", "portal")
		u := waitUserReady(t, "team-a", "carol")
		pc := readSecret(t, "team-a", "portal-credentials")
		pw := readSecret(t, "team-a", u.Status.PasswordSecretName)["password"]

		login := url.Values{"grant_type": {"password"}, "username": {"carol@corp.test"}, "password": {pw}}
		r := servedAtReady(t, "carol", tokenRequest(pc["CLIENT_ID"], pc["CLIENT_SECRET"], login))
		access, refresh := tokens(r)
		// A device login of carol (the suite's device login client allows every user).
		q := url.Values{"username": {"carol@corp.test"}, "password": {pw}, "device-info": {"carol-phone"}}
		req, _ := http.NewRequest(http.MethodPost, suite.baseURL+"/v1/oauth/?"+q.Encode(), nil)
		dr := do(t, req)
		var device struct {
			Data struct {
				AccessToken string `json:"access_token"`
			} `json:"data"`
		}
		_ = json.Unmarshal(dr.body, &device)
		remember(device.Data.AccessToken)
		if dr.status != http.StatusOK || device.Data.AccessToken == "" {
			t.Fatalf("device login answered %d: %s", dr.status, dr.body)
		}
		for _, tok := range []string{access, refresh, device.Data.AccessToken} {
			if got := introspect(tok); got["active"] != true || got["sub"] != "carol@corp.test" || got["sub_type"] != "user" {
				t.Fatalf("before the deletion, introspection = %v", got)
			}
		}
		if v := verify(access); v.status != http.StatusOK || v.header.Get("X-Auth-Subject") != "carol@corp.test" || v.header.Get("X-Auth-Subject-Type") != "user" {
			t.Fatalf("before the deletion, /auth/verify answered %d %v", v.status, v.header)
		}

		deleteAndWait(carol)
		// Another team takes the free username.
		mallory := &authv1alpha1.User{ObjectMeta: metav1.ObjectMeta{Name: "not-carol", Namespace: "team-b"},
			Spec: authv1alpha1.UserSpec{Username: "carol@corp.test", Scopes: []string{"read", "admin"}}}
		if err := suite.k8s.Create(ctx, mallory); err != nil {
			t.Fatal(err)
		}
		nu := waitUserReady(t, "team-b", "not-carol")
		npw := readSecret(t, "team-b", nu.Status.PasswordSecretName)["password"]
		// The new User is served (its own login works) before the old tokens are judged.
		r = servedAtReady(t, "the new carol@corp.test", tokenRequest(pc["CLIENT_ID"], pc["CLIENT_SECRET"], url.Values{"grant_type": {"password"}, "username": {"carol@corp.test"}, "password": {npw}}))
		newAccess, _ := tokens(r)
		if got := introspect(newAccess); got["active"] != true {
			t.Fatalf("the new user's own token: introspection = %v", got)
		}

		for name, tok := range map[string]string{"access token": access, "refresh token": refresh, "device token": device.Data.AccessToken} {
			if got := introspect(tok); got["active"] != false || len(got) != 1 {
				t.Errorf("the deleted user's %s: introspection = %v, want exactly {\"active\":false}", name, got)
			}
		}
		if v := verify(access); v.status != http.StatusUnauthorized {
			t.Errorf("the deleted user's access token: /auth/verify answered %d %v, want 401", v.status, v.header)
		}
		if v := verify(device.Data.AccessToken); v.status != http.StatusUnauthorized {
			t.Errorf("the deleted user's device token: /auth/verify answered %d, want 401", v.status)
		}
		rr := tokenRequest(pc["CLIENT_ID"], pc["CLIENT_SECRET"], url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
		if rr.status != http.StatusBadRequest || rr.json(t)["error"] != "invalid_grant" {
			t.Errorf("the deleted user's refresh token: /oauth/token answered %d %s, want 400 invalid_grant", rr.status, rr.body)
		}
	})

	t.Run("an OAuthClient re-created under a deleted one's client id inherits none of its tokens", func(t *testing.T) {
		spec := authv1alpha1.OAuthClientSpec{
			ClientID:   "shared-svc",
			GrantTypes: []authv1alpha1.GrantType{authv1alpha1.GrantClientCredentials, authv1alpha1.GrantSession},
			NumericID:  ptr.To[int64](31337),
			Scopes:     []string{"read", "admin"},
		}
		svc := &authv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "svc", Namespace: "team-a"}, Spec: spec}
		if err := suite.k8s.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
		waitClientReady(t, "team-a", "svc")
		sc := readSecret(t, "team-a", "svc-credentials")
		r := servedAtReady(t, "svc", tokenRequest(sc["CLIENT_ID"], sc["CLIENT_SECRET"], url.Values{"grant_type": {"client_credentials"}}))
		access, _ := tokens(r)
		readOnly, _ := tokens(tokenRequest(sc["CLIENT_ID"], sc["CLIENT_SECRET"], url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}))
		v1 := postForm(t, "/v1/auth/token", url.Values{"client_id": {sc["CLIENT_ID"]}, "client_secret": {sc["CLIENT_SECRET"]}})
		var v1body struct {
			Data struct {
				AccessToken string `json:"access_token"`
			} `json:"data"`
		}
		_ = json.Unmarshal(v1.body, &v1body)
		sr := postJSON(t, "/api/auth/session/31337", map[string]string{"api_key": sc["API_KEY"], "secret": sc["API_SECRET"]})
		session, _ := sr.json(t)["token"].(string)
		remember(v1body.Data.AccessToken, session)
		if v1.status != http.StatusOK || sr.status != http.StatusOK {
			t.Fatalf("v1 answered %d %s, session %d %s", v1.status, v1.body, sr.status, sr.body)
		}
		all := map[string]string{"client_credentials token": access, "v1 token": v1body.Data.AccessToken, "session token": session}
		for name, tok := range all {
			if got := introspect(tok); got["active"] != true || got["sub"] != "shared-svc" || got["sub_type"] != "client" {
				t.Fatalf("before the deletion, the %s introspects as %v", name, got)
			}
		}
		if v := verify(access); v.status != http.StatusOK || v.header.Get("X-Auth-Subject-Type") != "client" {
			t.Fatalf("before the deletion, /auth/verify answered %d %v", v.status, v.header)
		}

		// Withdrawing a scope from the same object ends the tokens that carry it.
		if err := suite.k8s.Patch(ctx, svc, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"scopes":["read"]}}`))); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "a token with a withdrawn scope to go inactive", func() bool {
			return introspect(access)["active"] == false
		})
		if got := introspect(readOnly); got["active"] != true {
			t.Fatalf("a token with only scopes the client still has: introspection = %v", got)
		}

		deleteAndWait(svc)
		spec.Scopes = []string{"read"}
		other := &authv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "svc-again", Namespace: "team-b"}, Spec: spec}
		if err := suite.k8s.Create(ctx, other); err != nil {
			t.Fatal(err)
		}
		waitClientReady(t, "team-b", "svc-again")
		oc := readSecret(t, "team-b", "svc-again-credentials")
		r = servedAtReady(t, "the new shared-svc", tokenRequest(oc["CLIENT_ID"], oc["CLIENT_SECRET"], url.Values{"grant_type": {"client_credentials"}}))
		fresh, _ := tokens(r)
		if got := introspect(fresh); got["active"] != true {
			t.Fatalf("the new client's own token: introspection = %v", got)
		}
		all["read-only client_credentials token"] = readOnly
		for name, tok := range all {
			if got := introspect(tok); got["active"] != false || len(got) != 1 {
				t.Errorf("the deleted client's %s: introspection = %v, want exactly {\"active\":false}", name, got)
			}
		}
		for _, tok := range []string{access, readOnly, v1body.Data.AccessToken} {
			if v := verify(tok); v.status != http.StatusUnauthorized {
				t.Errorf("a deleted client's token: /auth/verify answered %d %v, want 401", v.status, v.header)
			}
		}
	})
}

// Issue 15, finding 6: a client with client id "root" and a User "root" both
// gave X-Auth-Subject: root, and tokens carried no audience. Now
// X-Auth-Subject-Type (and the sub_type claim) says which, and tokens carry
// "aud" from spec.audiences (default: the issuer), which /auth/verify checks
// with ?audience= and introspection reports.
func TestSubjectsAreUnambiguousAndTokensCarryAnAudience(t *testing.T) {
	_, _, mobile, _ := applyFixtures(t)
	ctx := context.Background()
	if err := suite.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-root"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	const api = "https://api.example.test"
	rootClient := &authv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "root-client", Namespace: "team-root"}, Spec: authv1alpha1.OAuthClientSpec{
		ClientID: "root", GrantTypes: []authv1alpha1.GrantType{authv1alpha1.GrantClientCredentials, authv1alpha1.GrantPassword},
		Scopes: []string{"read"}, Audiences: []string{api}}}
	rootUser := &authv1alpha1.User{ObjectMeta: metav1.ObjectMeta{Name: "root", Namespace: "team-root"},
		Spec: authv1alpha1.UserSpec{Username: "root", Scopes: []string{"read"}}}
	for _, o := range []client.Object{rootClient, rootUser} {
		if err := suite.k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	waitClientReady(t, "team-root", "root-client")
	u := waitUserReady(t, "team-root", "root")
	rc := readSecret(t, "team-root", "root-client-credentials")
	pw := readSecret(t, "team-root", u.Status.PasswordSecretName)["password"]

	token := func(id, secret string, form url.Values) string {
		t.Helper()
		var r response
		eventually(t, 5*time.Second, "a token", func() bool {
			req, _ := http.NewRequest(http.MethodPost, suite.baseURL+"/oauth/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(id, secret)
			r = do(t, req)
			return r.status == http.StatusOK
		})
		tok, _ := r.json(t)["access_token"].(string)
		remember(tok)
		return tok
	}
	verify := func(tok, query string) response {
		req, _ := http.NewRequest(http.MethodGet, suite.baseURL+"/auth/verify"+query, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		return do(t, req)
	}
	clientTok := token(rc["CLIENT_ID"], rc["CLIENT_SECRET"], url.Values{"grant_type": {"client_credentials"}})
	userTok := token(rc["CLIENT_ID"], rc["CLIENT_SECRET"], url.Values{"grant_type": {"password"}, "username": {"root"}, "password": {pw}})

	for _, c := range []struct{ name, tok, typ string }{{"the client root", clientTok, "client"}, {"the user root", userTok, "user"}} {
		v := verify(c.tok, "")
		if v.status != http.StatusOK || v.header.Get("X-Auth-Subject") != "root" || v.header.Get("X-Auth-Subject-Type") != c.typ {
			t.Errorf("%s: /auth/verify answered %d, X-Auth-Subject %q, X-Auth-Subject-Type %q; want 200, root, %s",
				c.name, v.status, v.header.Get("X-Auth-Subject"), v.header.Get("X-Auth-Subject-Type"), c.typ)
		}
		claims := verifyWithJWKS(t, c.tok)
		if claims["sub_type"] != c.typ || fmt.Sprint(claims["aud"]) != "["+api+"]" {
			t.Errorf("%s: JWT claims sub_type %v, aud %v; want %s, %s", c.name, claims["sub_type"], claims["aud"], c.typ, api)
		}
		if v := verify(c.tok, "?audience="+url.QueryEscape(api)); v.status != http.StatusOK {
			t.Errorf("%s: /auth/verify?audience=<its audience> answered %d", c.name, v.status)
		}
		if v := verify(c.tok, "?audience="+url.QueryEscape("https://tokensmith.test")); v.status != http.StatusUnauthorized ||
			v.header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
			t.Errorf("%s: /auth/verify for another audience answered %d %v, want 401 invalid_token", c.name, v.status, v.header)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, suite.baseURL+"/oauth/introspect", strings.NewReader(url.Values{"token": {userTok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(mobile["CLIENT_ID"], mobile["CLIENT_SECRET"])
	got := do(t, req).json(t)
	if aud, _ := got["aud"].([]any); got["sub_type"] != "user" || len(aud) != 1 || aud[0] != api {
		t.Errorf("introspection = %v, want sub_type user and aud [%s]", got, api)
	}

	// A client that names no audience: its tokens are for the issuer.
	plain := token(mobile["CLIENT_ID"], mobile["CLIENT_SECRET"], url.Values{"grant_type": {"client_credentials"}})
	if claims := verifyWithJWKS(t, plain); fmt.Sprint(claims["aud"]) != "[https://tokensmith.test]" {
		t.Errorf("default aud = %v, want the issuer", claims["aud"])
	}
	if v := verify(plain, "?audience="+url.QueryEscape("https://tokensmith.test")); v.status != http.StatusOK {
		t.Errorf("/auth/verify?audience=<issuer> answered %d for a default-audience token", v.status)
	}
	if v := verify(plain, "?audience=a&audience=b"); v.status != http.StatusBadRequest {
		t.Errorf("two audiences answered %d, want 400", v.status)
	}
}
