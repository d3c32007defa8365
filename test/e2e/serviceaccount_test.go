package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/testenv"
)

const (
	saNamespace = "workloads"
	// audience is the server's issuer: the default audience of ServiceAccount tokens.
	audience      = "https://tokensmith.test"
	assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// saToken is `kubectl create token NAME --audience AUD` (the TokenRequest
// API), bound to pod when one is given.
func saToken(t *testing.T, name, aud string, pod *corev1.Pod) string {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: saNamespace, Name: name}}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{aud}, ExpirationSeconds: ptr.To[int64](600)}}
	if pod != nil {
		tr.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
	}
	if err := suite.k8s.SubResource("token").Create(context.Background(), sa, tr); err != nil {
		t.Fatal(err)
	}
	remember(tr.Status.Token)
	return tr.Status.Token
}

func createSA(t *testing.T, name string) {
	t.Helper()
	if err := suite.k8s.Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: saNamespace, Name: name}}); err != nil {
		t.Fatal(err)
	}
}

func withAssertion(form url.Values, assertion string) url.Values {
	form.Set("client_assertion_type", assertionType)
	form.Set("client_assertion", assertion)
	return form
}

// TestServiceAccountTokensAuthenticateClients: a client bound to a
// ServiceAccount has no secret; a token of that ServiceAccount from the
// TokenRequest API authenticates it on every grant it has, on introspection
// and revocation, also through golang.org/x/oauth2/clientcredentials; every
// refusal of the issue is 401 invalid_client in the endpoint's shape.
func TestServiceAccountTokensAuthenticateClients(t *testing.T) {
	ctx := context.Background()
	_, _, _, password := applyFixtures(t) // alice, for the password grant
	if err := suite.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: saNamespace}}); err != nil {
		t.Fatal(err)
	}
	for _, sa := range []string{"reports", "stranger", "doomed"} {
		createSA(t, sa)
	}
	for _, oc := range []*authv1alpha1.OAuthClient{
		{ObjectMeta: metav1.ObjectMeta{Name: "reports", Namespace: saNamespace}, Spec: authv1alpha1.OAuthClientSpec{
			ServiceAccountName: "reports", AuthenticationMethods: []authv1alpha1.AuthenticationMethod{authv1alpha1.AuthServiceAccountToken},
			GrantTypes: []authv1alpha1.GrantType{authv1alpha1.GrantClientCredentials, authv1alpha1.GrantPassword, authv1alpha1.GrantRefreshToken},
			Scopes:     []string{"read", "write"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "doomed", Namespace: saNamespace}, Spec: authv1alpha1.OAuthClientSpec{
			ServiceAccountName: "doomed", AuthenticationMethods: []authv1alpha1.AuthenticationMethod{authv1alpha1.AuthServiceAccountToken},
			GrantTypes: []authv1alpha1.GrantType{authv1alpha1.GrantClientCredentials}}},
	} {
		if err := suite.k8s.Create(ctx, oc); err != nil {
			t.Fatal(err)
		}
	}
	waitClientReady(t, saNamespace, "reports")
	waitClientReady(t, saNamespace, "doomed")
	var oc authv1alpha1.OAuthClient
	if err := suite.k8s.Get(ctx, client.ObjectKey{Namespace: saNamespace, Name: "reports"}, &oc); err != nil {
		t.Fatal(err)
	}
	consumer := readSecret(t, saNamespace, "reports-credentials")
	if len(consumer) != 2 || consumer["CLIENT_ID"] != oc.Status.ClientID || consumer["TOKEN_URL"] == "" {
		t.Fatalf("the consumer Secret of a client without a secret holds %v keys, want CLIENT_ID and TOKEN_URL", len(consumer))
	}
	clientID := oc.Status.ClientID
	token := saToken(t, "reports", audience, nil)

	r := servedAtReady(t, "the client", postForm(t, "/oauth/token", withAssertion(url.Values{"grant_type": {"client_credentials"}}, token)))
	access, _ := r.json(t)["access_token"].(string)
	remember(access)
	if claims := verifyWithJWKS(t, access); claims["client_id"] != clientID || claims["sub"] != clientID {
		t.Fatalf("claims %v", claims)
	}

	t.Run("client_id may be sent and must match", func(t *testing.T) {
		if r := postForm(t, "/oauth/token", withAssertion(url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}}, token)); r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
		expectInvalidClient(t, postForm(t, "/oauth/token", withAssertion(url.Values{"grant_type": {"client_credentials"}, "client_id": {deviceLoginClientID}}, token)))
	})

	t.Run("every grant the client has", func(t *testing.T) {
		r := postForm(t, "/oauth/token", withAssertion(url.Values{"grant_type": {"password"}, "username": {"alice@example.com"}, "password": {password}, "scope": {"read"}}, token))
		if r.status != http.StatusOK {
			t.Fatalf("password grant: %d %s", r.status, r.body)
		}
		refresh, _ := r.json(t)["refresh_token"].(string)
		remember(refresh)
		r = postForm(t, "/oauth/token", withAssertion(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, token))
		if r.status != http.StatusOK {
			t.Fatalf("refresh_token grant: %d %s", r.status, r.body)
		}
		remember(r.json(t)["access_token"].(string))
	})

	t.Run("introspection and revocation", func(t *testing.T) {
		introspect := func() map[string]any {
			r := postForm(t, "/oauth/introspect", withAssertion(url.Values{"token": {access}}, token))
			if r.status != http.StatusOK {
				t.Fatalf("introspect: %d %s", r.status, r.body)
			}
			return r.json(t)
		}
		if got := introspect(); got["active"] != true || got["client_id"] != clientID {
			t.Fatalf("introspection %v", got)
		}
		if r := postForm(t, "/oauth/revoke", withAssertion(url.Values{"token": {access}}, token)); r.status != http.StatusOK {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		eventually(t, 5*time.Second, "the revocation", func() bool { return introspect()["active"] == false })
		for _, path := range []string{"/oauth/introspect", "/oauth/revoke"} {
			r := postForm(t, path, withAssertion(url.Values{"token": {access}}, saToken(t, "stranger", audience, nil)))
			if r.status != http.StatusUnauthorized || r.json(t)["error"] != "invalid_client" {
				t.Errorf("%s with an unbound ServiceAccount: %d %s", path, r.status, r.body)
			}
		}
	})

	t.Run("golang.org/x/oauth2/clientcredentials with the assertion as EndpointParams", func(t *testing.T) {
		cc := clientcredentials.Config{TokenURL: suite.baseURL + "/oauth/token", Scopes: []string{"read"},
			EndpointParams: url.Values{"client_assertion_type": {assertionType}, "client_assertion": {token}}}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		remember(tok.AccessToken)
		if claims := verifyWithJWKS(t, tok.AccessToken); claims["client_id"] != clientID || claims["scope"] != "read" {
			t.Fatalf("claims %v", claims)
		}
	})

	t.Run("the metadata says how", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, suite.baseURL+"/.well-known/oauth-authorization-server", nil)
		md := do(t, req).json(t)
		if md["service_account_token_audience"] != audience {
			t.Errorf("service_account_token_audience = %v", md["service_account_token_audience"])
		}
		for _, key := range []string{"token_endpoint_auth_methods_supported", "introspection_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"} {
			methods, _ := md[key].([]any)
			if len(methods) != 3 || methods[2] != "private_key_jwt" {
				t.Errorf("%s = %v", key, md[key])
			}
		}
	})

	forge := testenv.Forger(t, token)
	basic := func(form url.Values) response {
		req, _ := http.NewRequest(http.MethodPost, suite.baseURL+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(clientID, "anything")
		return do(t, req)
	}
	cc := url.Values{"grant_type": {"client_credentials"}}
	for _, tc := range []struct {
		name string
		send func() response
	}{
		{"a token for another audience (the API server's)", func() response {
			return postForm(t, "/oauth/token", withAssertion(url.Values{"grant_type": {"client_credentials"}}, saToken(t, "reports", "https://kubernetes.default.svc", nil)))
		}},
		{"an expired token", func() response {
			return postForm(t, "/oauth/token", withAssertion(url.Values{"grant_type": {"client_credentials"}}, forge(map[string]any{"exp": time.Now().Add(-time.Minute).Unix()})))
		}},
		{"a token not yet valid", func() response {
			later := time.Now().Add(10 * time.Minute).Unix()
			return postForm(t, "/oauth/token", withAssertion(url.Values{"grant_type": {"client_credentials"}}, forge(map[string]any{"nbf": later, "iat": later})))
		}},
		{"a token of another issuer", func() response {
			return postForm(t, "/oauth/token", withAssertion(url.Values{"grant_type": {"client_credentials"}}, forge(map[string]any{"iss": "https://issuer.example"})))
		}},
		{"a token of the cluster's issuer signed by another key", func() response {
			return postForm(t, "/oauth/token", withAssertion(url.Values{"grant_type": {"client_credentials"}}, forge(nil)))
		}},
		{"a ServiceAccount bound to no client", func() response {
			return postForm(t, "/oauth/token", withAssertion(url.Values{"grant_type": {"client_credentials"}}, saToken(t, "stranger", audience, nil)))
		}},
		{"a malformed assertion", func() response {
			return postForm(t, "/oauth/token", withAssertion(url.Values{"grant_type": {"client_credentials"}}, "not.a.jwt"))
		}},
		{"an oversized assertion", func() response {
			return postForm(t, "/oauth/token", withAssertion(url.Values{"grant_type": {"client_credentials"}}, token+strings.Repeat("A", 9000)))
		}},
		{"another assertion type", func() response {
			return postForm(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:saml2-bearer"}, "client_assertion": {token}})
		}},
		{"an assertion together with a client_secret", func() response {
			return postForm(t, "/oauth/token", withAssertion(url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {"anything"}}, token))
		}},
		{"an assertion together with HTTP Basic", func() response {
			return basic(withAssertion(cc, token))
		}},
	} {
		t.Run("refuses "+tc.name, func(t *testing.T) { expectInvalidClient(t, tc.send()) })
	}

	// The bound: the server runs with --service-account-verdict-max-age=2s
	// (default 30s; the package tests check the default), and kube-apiserver
	// caches a success for 10s.
	const bound = 2*time.Second + 10*time.Second + 3*time.Second
	t.Run("refuses a deleted ServiceAccount's token within the bound", func(t *testing.T) {
		doomed := saToken(t, "doomed", audience, nil)
		if r := postForm(t, "/oauth/token", withAssertion(url.Values{"grant_type": {"client_credentials"}}, doomed)); r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if err := suite.k8s.Delete(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: saNamespace, Name: "doomed"}}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		eventually(t, bound, "the deleted ServiceAccount's token to be refused", func() bool {
			return postForm(t, "/oauth/token", withAssertion(url.Values{"grant_type": {"client_credentials"}}, doomed)).status == http.StatusUnauthorized
		})
		t.Logf("refused %s after the deletion", time.Since(start).Round(10*time.Millisecond))
	})
	t.Run("refuses a token bound to a deleted pod within the bound", func(t *testing.T) {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: saNamespace, Name: "reports"},
			Spec: corev1.PodSpec{ServiceAccountName: "reports", Containers: []corev1.Container{{Name: "app", Image: "example/reports"}}}}
		if err := suite.k8s.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
		podToken := saToken(t, "reports", audience, pod)
		if r := postForm(t, "/oauth/token", withAssertion(url.Values{"grant_type": {"client_credentials"}}, podToken)); r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if err := suite.k8s.Delete(ctx, pod, &client.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		eventually(t, bound, "the deleted pod's token to be refused", func() bool {
			return postForm(t, "/oauth/token", withAssertion(url.Values{"grant_type": {"client_credentials"}}, podToken)).status == http.StatusUnauthorized
		})
		t.Logf("refused %s after the deletion", time.Since(start).Round(10*time.Millisecond))
		if r := postForm(t, "/oauth/token", withAssertion(url.Values{"grant_type": {"client_credentials"}}, token)); r.status != http.StatusOK {
			t.Fatalf("the ServiceAccount's other token: %d %s", r.status, r.body)
		}
	})
}

// TestAClientMigratesFromASecretToItsServiceAccount: with both methods listed
// both work; dropping clientSecret removes CLIENT_SECRET and it stops working.
func TestAClientMigratesFromASecretToItsServiceAccount(t *testing.T) {
	ctx := context.Background()
	ns := "migrating"
	if err := suite.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	if err := suite.k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api"}}); err != nil {
		t.Fatal(err)
	}
	oc := &authv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: ns}, Spec: authv1alpha1.OAuthClientSpec{
		GrantTypes: []authv1alpha1.GrantType{authv1alpha1.GrantClientCredentials}}}
	if err := suite.k8s.Create(ctx, oc); err != nil {
		t.Fatal(err)
	}
	waitClientReady(t, ns, "api")
	creds := readSecret(t, ns, "api-credentials")
	remember(creds["CLIENT_SECRET"])
	withSecret := func() int {
		return postForm(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {creds["CLIENT_ID"]}, "client_secret": {creds["CLIENT_SECRET"]}}).status
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api"}}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}}}
	if err := suite.k8s.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatal(err)
	}
	remember(tr.Status.Token)
	withToken := func() int {
		return postForm(t, "/oauth/token", withAssertion(url.Values{"grant_type": {"client_credentials"}}, tr.Status.Token)).status
	}
	eventually(t, 5*time.Second, "the secret to work", func() bool { return withSecret() == http.StatusOK })
	if withToken() != http.StatusUnauthorized {
		t.Fatal("a ServiceAccount token works before the client names its ServiceAccount")
	}

	patch := func(spec string) {
		t.Helper()
		if err := suite.k8s.Patch(ctx, oc, client.RawPatch(types.MergePatchType, []byte(`{"spec":`+spec+`}`))); err != nil {
			t.Fatal(err)
		}
	}
	patch(`{"serviceAccountName":"api"}`) // the default methods: both
	eventually(t, 10*time.Second, "the ServiceAccount token to work", func() bool { return withToken() == http.StatusOK })
	if withSecret() != http.StatusOK {
		t.Fatal("the secret stopped working while both methods are allowed")
	}
	patch(`{"authenticationMethods":["serviceAccountToken"]}`)
	eventually(t, 10*time.Second, "the secret to stop working", func() bool { return withSecret() == http.StatusUnauthorized })
	eventually(t, 10*time.Second, "CLIENT_SECRET to leave the consumer Secret", func() bool {
		c := readSecret(t, ns, "api-credentials")
		_, has := c["CLIENT_SECRET"]
		return !has && c["CLIENT_ID"] == creds["CLIENT_ID"]
	})
	if withToken() != http.StatusOK {
		t.Fatal("the ServiceAccount token stopped working")
	}
}

func expectInvalidClient(t *testing.T, r response) {
	t.Helper()
	if r.status != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401: %s", r.status, r.body)
	}
	want := `{"error":"invalid_client","error_description":"Client authentication failed","message":"Client authentication failed"}`
	if strings.TrimSpace(string(r.body)) != want {
		t.Fatalf("body %s, want %s", r.body, want)
	}
}
