package lockout_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/controllers"
	"github.com/tokensmith/tokensmith/internal/testenv"
	"github.com/tokensmith/tokensmith/server"
	"github.com/tokensmith/tokensmith/server/lockout"
)

const serverNamespace = "tokensmith-system"

// clearLock is the JSON patch the User type's documentation gives for
// "kubectl patch user NAME --subresource=status --type=json -p ...".
const clearLock = `[{"op":"remove","path":"/status/lockedUntil"}]`

// TestALockReachesEveryReplicaAndClearingItUnlocksEveryReplica runs the real
// controller and two token server replicas (server.Run, each with its own
// index, acting as the Helm chart's server ServiceAccount) against a real
// kube-apiserver. Failures on replica A lock the user there at once and in
// User status; replica B honours the lock shortly after; on both the right
// password gets the wrong password's exact answer on both password
// endpoints; the documented kubectl patch unlocks both replicas.
func TestALockReachesEveryReplicaAndClearingItUnlocksEveryReplica(t *testing.T) {
	_, cfg := testenv.ForTest(t)
	k8s, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for _, ns := range []string{serverNamespace, "apps"} {
		if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}

	mgr, err := controllers.NewManager(cfg, controllers.ManagerOptions{MetricsBindAddress: controllers.BindOff, HealthProbeBindAddress: controllers.BindOff, SkipControllerNameValidation: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := controllers.Setup(mgr, controllers.Options{ServerNamespace: serverNamespace, TokenURL: "http://tokensmith/oauth/token"}); err != nil {
		t.Fatal(err)
	}
	mgrDone := make(chan struct{})
	go func() { defer close(mgrDone); _ = mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-mgrDone })

	serverCfg := rest.CopyConfig(cfg)
	serverCfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + serverNamespace + ":" + applyServerRBAC(ctx, t, k8s)}

	const threshold = 5
	policy := lockout.Policy{Threshold: threshold} // default lengths: the first lock lasts 1m
	replicas := map[string]string{}
	for _, name := range []string{"A", "B"} {
		listen, admin := testenv.FreeAddr(), testenv.FreeAddr()
		done := make(chan error, 1)
		go func() {
			done <- server.Run(ctx, serverCfg, server.RunOptions{
				Options: server.Options{Issuer: "https://tokensmith.test", DeviceLoginClient: "app",
					Logger: testr.NewWithOptions(t, testr.Options{Verbosity: 0}).WithName(name), RateLimits: server.NoRateLimits()},
				Namespace: serverNamespace, Listen: listen, AdminListen: admin, Lockout: policy,
			})
		}()
		t.Cleanup(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("replica %s: %v", name, err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("replica %s did not stop", name)
			}
		})
		replicas[name] = "http://" + listen
		waitFor(t, 60*time.Second, "replica "+name+" ready", func() bool {
			resp, err := http.Get("http://" + admin + "/readyz")
			if err != nil {
				return false
			}
			_ = resp.Body.Close()
			return resp.StatusCode == 200
		})
	}

	// The documented way to create a user and a client with the password grant.
	create := func(obj client.Object) {
		t.Helper()
		if err := k8s.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "alice-pw"}, Data: map[string][]byte{"password": []byte("right horse battery")}})
	user := &authv1alpha1.User{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "alice"},
		Spec: authv1alpha1.UserSpec{Username: "alice", PasswordSecretRef: &authv1alpha1.SecretKeyRef{Name: "alice-pw", Key: "password"}}}
	create(user)
	create(&authv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "app"},
		Spec: authv1alpha1.OAuthClientSpec{ClientID: "app", GrantTypes: []authv1alpha1.GrantType{"password"}}})
	var clientSecret string
	waitFor(t, 30*time.Second, "the client's credentials", func() bool {
		var s corev1.Secret
		if k8s.Get(ctx, client.ObjectKey{Namespace: "apps", Name: "app-credentials"}, &s) != nil {
			return false
		}
		clientSecret = string(s.Data["CLIENT_SECRET"])
		return clientSecret != ""
	})

	type answer struct {
		status int
		body   string
	}
	// login tries a password on one endpoint of one replica.
	login := func(replica, endpoint, pw string) answer {
		t.Helper()
		var req *http.Request
		if endpoint == "device" {
			req, _ = http.NewRequest("POST", replicas[replica]+"/v1/oauth/?"+url.Values{"username": {"alice"}, "password": {pw}, "device-info": {"laptop"}}.Encode(), nil)
		} else {
			form := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {pw}, "client_id": {"app"}, "client_secret": {clientSecret}}
			req, _ = http.NewRequest("POST", replicas[replica]+"/oauth/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, string(b)}
	}
	endpoints := []string{"device", "password"}
	for _, r := range []string{"A", "B"} {
		for _, e := range endpoints {
			waitFor(t, 30*time.Second, "alice logging in on "+r+" "+e, func() bool { return login(r, e, "right horse battery").status == 200 })
		}
	}
	// The wrong password's answers, taken on B (two failures there, under the threshold).
	wrong := map[string]answer{}
	for _, e := range endpoints {
		wrong[e] = login("B", e, "wrong")
		if wrong[e].status == 200 {
			t.Fatalf("%s accepted a wrong password", e)
		}
	}

	for i := range threshold {
		if a := login("A", endpoints[i%2], "wrong"); a != wrong[endpoints[i%2]] {
			t.Fatalf("failure %d on A: %+v", i+1, a)
		}
	}
	lockedAt := time.Now()
	for _, e := range endpoints {
		if a := login("A", e, "right horse battery"); a != wrong[e] {
			t.Fatalf("A right after the lock, %s: got %+v, want the wrong password's %+v", e, a, wrong[e])
		}
	}

	var u authv1alpha1.User
	waitFor(t, 10*time.Second, "status.lockedUntil", func() bool {
		return k8s.Get(ctx, client.ObjectKeyFromObject(user), &u) == nil && u.Status.LockedUntil != nil
	})
	if d := u.Status.LockedUntil.Sub(lockedAt); d < 50*time.Second || d > 70*time.Second {
		t.Fatalf("status.lockedUntil %s is %s after the lock, want about 1m", u.Status.LockedUntil, d)
	}
	waitFor(t, 5*time.Second, "replica B to refuse the right password", func() bool {
		return login("B", "device", "right horse battery") == wrong["device"]
	})
	propagation := time.Since(lockedAt)
	t.Logf("lock propagation to replica B: %s", propagation)
	for _, e := range endpoints {
		if a := login("B", e, "right horse battery"); a != wrong[e] {
			t.Fatalf("B %s while locked: got %+v, want the wrong password's %+v", e, a, wrong[e])
		}
	}

	// No login reaches A between its lock and the clearing: A learns of the
	// clearing from its index alone. Give A's index the time to show the
	// lock first (B's already does), as it long has when a person clears it.
	time.Sleep(time.Second)
	if err := k8s.Status().Patch(ctx, user, client.RawPatch(types.JSONPatchType, []byte(clearLock))); err != nil {
		t.Fatal(err)
	}
	clearedAt := time.Now()
	for _, r := range []string{"A", "B"} {
		waitFor(t, 5*time.Second, "replica "+r+" to accept the right password after clearing", func() bool {
			return login(r, "device", "right horse battery").status == 200
		})
		if a := login(r, "password", "right horse battery"); a.status != 200 {
			t.Fatalf("%s password grant after clearing: %+v", r, a)
		}
	}
	t.Logf("unlock propagation to both replicas: %s", time.Since(clearedAt))
	if k8s.Get(ctx, client.ObjectKeyFromObject(user), &u) != nil || u.Status.LockedUntil != nil {
		t.Fatalf("status.lockedUntil came back: %v", u.Status.LockedUntil)
	}
}

// applyServerRBAC applies the Helm chart's server ServiceAccount and RBAC to
// the server namespace and returns the ServiceAccount's name.
func applyServerRBAC(ctx context.Context, t *testing.T, c client.Client) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ch, err := loader.Load(filepath.Join(root, "charts", "tokensmith"))
	if err != nil {
		t.Fatal(err)
	}
	rv, err := chartutil.ToRenderValues(ch, map[string]any{}, chartutil.ReleaseOptions{
		Name: "tokensmith", Namespace: serverNamespace, Revision: 1, IsInstall: true,
	}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	files, err := engine.Render(ch, rv)
	if err != nil {
		t.Fatal(err)
	}
	sa := ""
	for name, content := range files {
		if !strings.HasSuffix(name, "server-rbac.yaml") && !strings.HasSuffix(name, "serviceaccounts.yaml") {
			continue
		}
		for _, doc := range releaseutil.SplitManifests(content) {
			obj := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil || len(obj.Object) == 0 {
				continue
			}
			if obj.GetKind() == "ServiceAccount" && obj.GetLabels()["app.kubernetes.io/component"] != "server" {
				continue
			}
			if err := c.Create(ctx, obj); err != nil {
				t.Fatalf("applying %s %s: %v", obj.GetKind(), obj.GetName(), err)
			}
			if obj.GetKind() == "ServiceAccount" {
				sa = obj.GetName()
			}
		}
	}
	if sa == "" {
		t.Fatal("the chart rendered no server ServiceAccount")
	}
	return sa
}

func waitFor(t *testing.T, timeout time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
