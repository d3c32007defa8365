package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"helm.sh/helm/v3/pkg/action"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
)

// TestHelmInstallOnARealNode is the life of an installation: install with
// the chart's defaults, clients applied, a token of every dialect through the
// Service, an upgrade that changes the server's pods, an uninstall.
func TestHelmInstallOnARealNode(t *testing.T) {
	ctx, k, cfg := startOnNode(t, 15*time.Minute)
	ch := loadChart(t)
	var (
		svc        *tokenService
		before     map[string]map[string][]byte
		issued     tokens
		secretsLog []string
	)

	steps := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"helm install with the default values: every Deployment Available within 3 minutes", func(t *testing.T) {
			install := action.NewInstall(cfg)
			install.ReleaseName, install.Namespace = release, namespace
			if _, err := install.RunWithContext(ctx, ch, imageValues()); err != nil {
				t.Fatalf("helm install: %v", err)
			}
			waitDeploymentsAvailable(ctx, t, k)
		}},
		{"the controller holds its leader Lease", func(t *testing.T) {
			checkLeader(ctx, t, k)
		}},
		{"kubectl apply -f config/samples/: every client and user Ready", func(t *testing.T) {
			applySamples(ctx, t, k)
			waitSamplesReady(ctx, t, k, 2*time.Minute)
		}},
		{"the chart's admission policy refuses a client outside a TokenPolicy; edit may create OAuthClients", func(t *testing.T) {
			checkTenancy(ctx, t, k)
		}},
		{"a token of every dialect through the token Service's ClusterIP", func(t *testing.T) {
			svc = newTokenService(ctx, t, k)
			creds := readCredentials(ctx, t, k)
			secretsLog = creds.secrets()
			issued = svc.issueEveryDialect(t, creds, false)
			secretsLog = append(secretsLog, issued.all()...)
		}},
		{"a pod with no Secret, only a projected ServiceAccount token, gets a token and verifies it with the JWKS", func(t *testing.T) {
			checkServiceAccountClient(ctx, t, k, svc)
		}},
		{"the pods' logs hold no credential", func(t *testing.T) {
			checkLogsHoldNone(ctx, t, k, secretsLog)
		}},
		{"helm upgrade with a changed value rolls the server and changes no credential", func(t *testing.T) {
			before = secretData(ctx, t, k)
			upgrade := action.NewUpgrade(cfg)
			upgrade.Namespace, upgrade.ReuseValues = namespace, true
			vals := imageValues()
			// Device login needs the client its tokens name; the samples declare it.
			vals["server"] = map[string]any{"deviceLoginClient": "device-login"}
			if _, err := upgrade.RunWithContext(ctx, release, ch, vals); err != nil {
				t.Fatalf("helm upgrade: %v", err)
			}
			waitDeploymentsAvailable(ctx, t, k)
			if diffs := diffSecrets(before, secretData(ctx, t, k)); len(diffs) > 0 {
				t.Fatalf("the upgrade changed credentials: %s", strings.Join(diffs, "; "))
			}
			creds := readCredentials(ctx, t, k)
			svc.checkStillActive(t, creds, issued)
			now := svc.issueEveryDialect(t, creds, true)
			secretsLog = append(secretsLog, now.all()...)
			checkLogsHoldNone(ctx, t, k, secretsLog)
		}},
		{"helm uninstall removes the workloads and keeps the CRDs and the credentials", func(t *testing.T) {
			before = secretData(ctx, t, k)
			uninstall := action.NewUninstall(cfg)
			uninstall.Wait, uninstall.Timeout = true, 2*time.Minute
			if _, err := uninstall.Run(release); err != nil {
				t.Fatalf("helm uninstall: %v", err)
			}
			checkUninstalled(ctx, t, k, before)
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.fn) {
			return
		}
	}
}

func checkLeader(ctx context.Context, t *testing.T, k kube) {
	t.Helper()
	pods, err := k.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=controller"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("no controller pods: %v", err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		leases, err := k.cs.CoordinationV1().Leases(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range leases.Items {
			if l.Spec.HolderIdentity == nil {
				continue
			}
			for _, p := range pods.Items {
				if strings.HasPrefix(*l.Spec.HolderIdentity, p.Name+"_") {
					t.Logf("Lease %s held by %s", l.Name, *l.Spec.HolderIdentity)
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Lease in %s is held by a controller pod", namespace)
		}
		time.Sleep(time.Second)
	}
}

func checkLogsHoldNone(ctx context.Context, t *testing.T, k kube, secrets []string) {
	t.Helper()
	logs := podLogs(ctx, t, k)
	if len(logs) == 0 {
		t.Fatal("no pod logs to check")
	}
	for pod, text := range logs {
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("the log of %s holds a credential (%d characters)", pod, len(s))
			}
		}
	}
}

func checkUninstalled(ctx context.Context, t *testing.T, k kube, before map[string]map[string][]byte) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		deps, err := k.cs.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pods, err := k.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		svcs, err := k.cs.CoreV1().Services(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(deps.Items)+len(pods.Items)+len(svcs.Items) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after uninstall: %d Deployments, %d pods, %d Services left", len(deps.Items), len(pods.Items), len(svcs.Items))
		}
		time.Sleep(time.Second)
	}
	for _, crd := range []string{"oauthclients.auth.tokensmith.io", "users.auth.tokensmith.io"} {
		if _, err := k.cs.Discovery().ServerResourcesForGroupVersion(authv1alpha1.GroupVersion.String()); err != nil {
			t.Fatalf("CRD %s gone: %v", crd, err)
		}
	}
	var clients authv1alpha1.OAuthClientList
	if err := k.c.List(ctx, &clients); err != nil || len(clients.Items) == 0 {
		t.Fatalf("OAuthClients gone after uninstall: %v", err)
	}
	if diffs := diffSecrets(before, secretData(ctx, t, k)); len(diffs) > 0 {
		t.Fatalf("uninstall changed or removed credentials: %s", strings.Join(diffs, "; "))
	}
	if _, err := k.cs.CoreV1().Secrets(namespace).Get(ctx, "tokensmith-signing-keys", metav1.GetOptions{}); apierrors.IsNotFound(err) {
		t.Fatal("uninstall removed the signing keys")
	}
}

// credentials are the sample clients' and user's secrets, from their consumer
// Secrets, as the applications mounting them would read them.
type credentials struct {
	sessionID, apiKey, apiSecret string
	v1ID, v1Secret               string
	mobileID, mobileSecret       string
	username, password           string
}

func readCredentials(ctx context.Context, t *testing.T, k kube) credentials {
	t.Helper()
	get := func(name, key string) string {
		s, err := k.cs.CoreV1().Secrets(appNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		v, ok := s.Data[key]
		if !ok || len(v) == 0 {
			t.Fatalf("Secret %s has no %s", name, key)
		}
		return string(v)
	}
	var game authv1alpha1.OAuthClient
	if err := k.c.Get(ctx, clientKey("game-backend"), &game); err != nil {
		t.Fatal(err)
	}
	return credentials{
		sessionID: fmt.Sprint(*game.Spec.NumericID),
		apiKey:    get("game-backend-credentials", "API_KEY"), apiSecret: get("game-backend-credentials", "API_SECRET"),
		v1ID: get("billing-service-credentials", "CLIENT_ID"), v1Secret: get("billing-service-credentials", "CLIENT_SECRET"),
		mobileID: get("mobile-app-credentials", "CLIENT_ID"), mobileSecret: get("mobile-app-credentials", "CLIENT_SECRET"),
		username: "alice@example.com", password: get("alice-password", "password"),
	}
}

func (c credentials) secrets() []string {
	return []string{c.apiKey, c.apiSecret, c.v1Secret, c.mobileSecret, c.password}
}

// tokens are what issueEveryDialect got.
type tokens struct {
	session, v1, oauth2, refresh, device string
}

func (tk tokens) all() []string { return []string{tk.session, tk.v1, tk.oauth2, tk.refresh, tk.device} }

// tokenService calls the token server through its Service's ClusterIP, as a
// pod would: kube-proxy's rules pick a server pod.
type tokenService struct {
	base string
	hc   *http.Client
}

func newTokenService(ctx context.Context, t *testing.T, k kube) *tokenService {
	t.Helper()
	svc, err := k.cs.CoreV1().Services(namespace).Get(ctx, release, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == "None" {
		t.Fatalf("Service %s has no ClusterIP", release)
	}
	return &tokenService{
		base: fmt.Sprintf("http://%s:%d", svc.Spec.ClusterIP, svc.Spec.Ports[0].Port),
		hc:   &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: cluster.DialContext, DisableKeepAlives: true}},
	}
}

func (s *tokenService) post(t *testing.T, path, contentType, body string, header http.Header) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		t.Fatalf("POST %s through the Service: %v", path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("POST %s: %d, not JSON: %q", path, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, out
}

func (s *tokenService) issueEveryDialect(t *testing.T, c credentials, deviceLogin bool) tokens {
	t.Helper()
	var tk tokens
	form := "application/x-www-form-urlencoded"

	code, body := s.post(t, "/api/auth/session/"+c.sessionID, "application/json",
		fmt.Sprintf(`{"api_key":%q,"secret":%q}`, c.apiKey, c.apiSecret), nil)
	tk.session = str(body, "token")
	if code != http.StatusOK || strings.Count(tk.session, ".") != 2 {
		t.Errorf("session dialect: %d %v", code, keys(body))
	}

	code, body = s.post(t, "/v1/auth/token", form, url.Values{"client_id": {c.v1ID}, "client_secret": {c.v1Secret}}.Encode(), nil)
	data, _ := body["data"].(map[string]any)
	tk.v1 = str(data, "access_token")
	if code != http.StatusOK || !strings.HasPrefix(tk.v1, "sk-") {
		t.Errorf("client-credentials v1: %d %v", code, keys(body))
	}

	basic := http.Header{"Authorization": {"Basic " + basicAuth(c.mobileID, c.mobileSecret)}}
	code, body = s.post(t, "/oauth/token", form, url.Values{"grant_type": {"password"}, "username": {c.username}, "password": {c.password}, "scope": {"profile"}}.Encode(), basic)
	tk.oauth2, tk.refresh = str(body, "access_token"), str(body, "refresh_token")
	if code != http.StatusOK || tk.oauth2 == "" || tk.refresh == "" {
		t.Errorf("OAuth 2.0 password grant: %d %v", code, keys(body))
	} else {
		s.verifyWithJWKS(t, tk.oauth2)
	}

	deviceURL := "/v1/oauth/?" + url.Values{"username": {c.username}, "password": {c.password}, "device-info": {"cluster-test"}}.Encode()
	code, body = s.post(t, deviceURL, "", "", nil)
	if deviceLogin {
		data, _ := body["data"].(map[string]any)
		tk.device = str(data, "access_token")
		if code != http.StatusOK || body["success"] != true || tk.device == "" {
			t.Errorf("device login v1: %d %v", code, keys(body))
		}
	} else if code != http.StatusInternalServerError {
		// Without --device-login-client (the chart's default) device login has
		// no client to name: README documents a 500.
		t.Errorf("device login without a device-login client: %d, want 500", code)
	}
	return tk
}

// verifyWithJWKS checks an access JWT as a resource server does: signature
// against the published JWKS, issuer, expiry, token_use.
func (s *tokenService) verifyWithJWKS(t *testing.T, raw string) {
	t.Helper()
	resp, err := s.hc.Get(s.base + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	jwks, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("JWKS: %d %v", resp.StatusCode, err)
	}
	kf, err := keyfunc.NewJWKSetJSON(jwks)
	if err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(raw, claims, kf.Keyfunc,
		jwt.WithValidMethods([]string{"ES256"}),
		jwt.WithIssuer("http://"+release+"."+namespace+".svc"),
		jwt.WithExpirationRequired()); err != nil {
		t.Fatalf("the access token does not verify with the JWKS: %v", err)
	}
	if claims["token_use"] != "access" || claims["sub"] != "alice@example.com" {
		t.Fatalf("claims: token_use %v sub %v", claims["token_use"], claims["sub"])
	}
}

// checkStillActive introspects tokens issued before an upgrade.
func (s *tokenService) checkStillActive(t *testing.T, c credentials, tk tokens) {
	t.Helper()
	basic := http.Header{"Authorization": {"Basic " + basicAuth(c.mobileID, c.mobileSecret)}}
	for name, tok := range map[string]string{"v1 opaque": tk.v1, "OAuth 2.0 access": tk.oauth2, "refresh": tk.refresh, "session": tk.session} {
		code, body := s.post(t, "/oauth/introspect", "application/x-www-form-urlencoded", url.Values{"token": {tok}}.Encode(), basic)
		if code != http.StatusOK || body["active"] != true {
			t.Errorf("%s token issued before the upgrade: %d active=%v", name, code, body["active"])
		}
	}
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

// keys lists a body's fields without their values, which may be credentials.
func keys(m map[string]any) []string {
	var out []string
	for k, v := range m {
		if k == "error" || k == "message" || k == "error_description" {
			out = append(out, fmt.Sprintf("%s=%v", k, v))
			continue
		}
		out = append(out, k)
	}
	return out
}

// checkTenancy: the real kube-controller-manager aggregates the chart's roles
// into "edit", and the chart's ValidatingAdmissionPolicy, fed by the
// controller's TokenPolicySnapshot, refuses a client no TokenPolicy allows.
// The policy allows every sample (numericID 1) and is deleted at once.
func checkTenancy(ctx context.Context, t *testing.T, k kube) {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: "tenant-editor", Groups: []string{"system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: appNamespace, Verb: "create", Group: authv1alpha1.GroupVersion.Group, Resource: "oauthclients"},
	}}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "tenant-editor", Namespace: appNamespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "tenant-editor"}},
	}
	if err := k.c.Create(ctx, rb); err != nil {
		t.Fatal(err)
	}
	policy := &authv1alpha1.TokenPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "cluster-test"},
		Spec:       authv1alpha1.TokenPolicySpec{NumericIDs: &authv1alpha1.NumericIDRange{Min: 1, Max: 1000}},
	}
	if err := k.c.Create(ctx, policy); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = k.c.Delete(ctx, policy)
		_ = k.c.Delete(ctx, rb)
	}()
	forbidden := &authv1alpha1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Name: "outside-policy", Namespace: appNamespace},
		Spec: authv1alpha1.OAuthClientSpec{
			GrantTypes: []authv1alpha1.GrantType{authv1alpha1.GrantSession}, NumericID: ptr[int64](5000),
		},
	}
	const want = `ValidatingAdmissionPolicy 'tokensmith-oauthclients' with binding 'tokensmith-oauthclients' denied request: ` +
		`no TokenPolicy selecting namespace "default" allows this OAuthClient: cluster-test refuses spec.numericID 5000 outside 1-1000 (rule numericIDs)`
	deadline := time.Now().Add(time.Minute)
	for {
		err := k.c.Create(ctx, forbidden.DeepCopy(), client.DryRunAll)
		if err != nil && strings.HasSuffix(err.Error(), want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a client outside the TokenPolicy: err = %v, want …%s", err, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
	for {
		got, err := k.cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status.Allowed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a namespace editor may not create OAuthClients: the chart's roles are not aggregated into edit")
		}
		time.Sleep(250 * time.Millisecond)
	}
}
