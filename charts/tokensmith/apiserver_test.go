package chart_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/tokensmith/tokensmith/internal/testenv"
)

// otherNamespace stands for any application namespace.
const otherNamespace = "team-a"

var (
	clusterOnce sync.Once
	theCluster  *cluster
	clusterErr  error
	stopCluster func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	if stopCluster != nil {
		stopCluster()
	}
	os.Exit(code)
}

// cluster is a real kube-apiserver and etcd (internal/testenv) with the
// tokensmith CRDs, a restricted-profile release namespace, an application
// namespace, and a ServiceMonitor CRD. Started once, by the first test that needs it.
type cluster struct {
	cfg      *rest.Config
	kube     kubernetes.Interface
	dyn      dynamic.Interface
	mapper   meta.ResettableRESTMapper
	warnings *warnings
}

// warnings collects the API server's warnings (unknown fields, deprecated APIs,
// "would violate PodSecurity"); the tests fail on any.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

func getCluster(t *testing.T) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a kube-apiserver; skipped with -short")
	}
	clusterOnce.Do(func() { theCluster, clusterErr = startCluster() })
	if clusterErr != nil {
		t.Fatalf("starting the test API server: %v", clusterErr)
	}
	return theCluster
}

func startCluster() (*cluster, error) {
	env, cfg, err := testenv.Start()
	if err != nil {
		return nil, err
	}
	stopCluster = func() { _ = env.Stop() }
	cfg = rest.CopyConfig(cfg)
	w := &warnings{}
	cfg.WarningHandler = w
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	c := &cluster{
		cfg: cfg, kube: kube, dyn: dyn, warnings: w,
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(kube.Discovery())),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The release namespace enforces the restricted profile, as a careful
	// platform team would label it.
	nsLabels := map[string]map[string]string{
		releaseNamespace: {
			"pod-security.kubernetes.io/enforce":         "restricted",
			"pod-security.kubernetes.io/enforce-version": "latest",
			"pod-security.kubernetes.io/warn":            "restricted",
		},
		otherNamespace: nil,
	}
	for name, l := range nsLabels {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
		if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("creating namespace %s: %w", name, err)
		}
	}

	b, err := os.ReadFile("testdata/servicemonitor-crd.yaml")
	if err != nil {
		return nil, err
	}
	crd := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(b, &crd.Object); err != nil {
		return nil, err
	}
	if err := c.apply(ctx, crd, false); err != nil {
		return nil, fmt.Errorf("installing the ServiceMonitor CRD: %w", err)
	}
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for {
		got, err := dyn.Resource(crdGVR).Get(ctx, crd.GetName(), metav1.GetOptions{})
		if err == nil && established(got) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the ServiceMonitor CRD never became established: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	c.mapper.Reset()
	w.take()
	return c, nil
}

func established(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// apply server-side applies u, as "kubectl apply --server-side --force-conflicts"
// (with --dry-run=server when dryRun) would.
func (c *cluster) apply(ctx context.Context, u *unstructured.Unstructured, dryRun bool) error {
	gvk := u.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("%s is not served by the API server: %w", gvk, err)
	}
	var ri dynamic.ResourceInterface = c.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ri = c.dyn.Resource(m.Resource).Namespace(u.GetNamespace())
	}
	opts := metav1.ApplyOptions{FieldManager: "chart-test", Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err = ri.Apply(ctx, u.GetName(), u, opts)
	return err
}

// TestRenderedObjectsAcceptedByAPIServer server-side applies (dry run) every
// object of every value set; the API server validates each against its schema
// (built-in kinds, the tokensmith CRDs, the ServiceMonitor CRD) and its
// admission, and may not even warn.
func TestRenderedObjectsAcceptedByAPIServer(t *testing.T) {
	c := getCluster(t)
	ctx := context.Background()
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			objs := render(t, vs.values)
			if len(objs) < 15 {
				t.Fatalf("only %d objects rendered", len(objs))
			}
			c.warnings.take()
			for _, o := range objs {
				if err := c.apply(ctx, o, true); err != nil {
					t.Errorf("%s %s rejected: %v", o.GetKind(), o.GetName(), err)
				}
				for _, w := range c.warnings.take() {
					t.Errorf("%s %s: API server warning: %s", o.GetKind(), o.GetName(), w)
				}
			}
		})
	}
}

// TestPodsAdmittedUnderRestrictedPodSecurity has the API server's own
// PodSecurity admission judge a Pod made from each pod template, in a namespace
// that enforces the restricted profile. A privileged pod proves the plugin is on.
func TestPodsAdmittedUnderRestrictedPodSecurity(t *testing.T) {
	c := getCluster(t)
	ctx := context.Background()
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}

	bad := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "privileged", Namespace: releaseNamespace},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "c", Image: "busybox", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
		}}},
	}
	_, err := c.kube.CoreV1().Pods(releaseNamespace).Create(ctx, bad, dryRun)
	if err == nil || !strings.Contains(err.Error(), "PodSecurity") {
		t.Fatalf("a privileged pod was not refused by PodSecurity admission (err=%v): this test would prove nothing", err)
	}

	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			for _, o := range ofKind(render(t, vs.values), "Deployment") {
				d := convert[appsv1.Deployment](t, o)
				pod := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{
						Name: d.Name + "-pod", Namespace: releaseNamespace,
						Labels: d.Spec.Template.Labels, Annotations: d.Spec.Template.Annotations,
					},
					Spec: d.Spec.Template.Spec,
				}
				c.warnings.take()
				if _, err := c.kube.CoreV1().Pods(releaseNamespace).Create(ctx, pod, dryRun); err != nil {
					t.Errorf("pod of Deployment %s refused: %v", d.Name, err)
				}
				for _, w := range c.warnings.take() {
					t.Errorf("pod of Deployment %s: API server warning: %s", d.Name, w)
				}
			}
		})
	}
}

// sa is a ServiceAccount of the default render.
type sa string

const (
	serverSA     sa = "tokensmith-server"
	controllerSA sa = "tokensmith-controller"
)

func (s sa) user() string { return "system:serviceaccount:" + releaseNamespace + ":" + string(s) }
func (s sa) groups() []string {
	return []string{"system:serviceaccounts", "system:serviceaccounts:" + releaseNamespace, "system:authenticated"}
}

type access struct {
	namespace, verb, group, resource, subresource, name string
}

func (c *cluster) allowed(ctx context.Context, who sa, a access) (bool, error) {
	return c.review(ctx, who.user(), who.groups(), a)
}

// review asks the API server's authorizer whether user, in groups, may do a.
func (c *cluster) review(ctx context.Context, user string, groups []string, a access) (bool, error) {
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, Groups: groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: a.namespace, Verb: a.verb, Group: a.group, Resource: a.resource,
			Subresource: a.subresource, Name: a.name,
		},
	}}
	got, err := c.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return got.Status.Allowed, nil
}

// installRBAC applies, for real, the default render's ServiceAccounts and RBAC
// objects, and waits until the authorizer has seen them.
func installRBAC(t *testing.T, c *cluster) {
	t.Helper()
	ctx := context.Background()
	for _, o := range render(t, "") {
		switch o.GetKind() {
		case "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding":
			if err := c.apply(ctx, o, false); err != nil {
				t.Fatalf("applying %s %s: %v", o.GetKind(), o.GetName(), err)
			}
		}
	}
	probes := map[sa]access{
		serverSA:     {namespace: releaseNamespace, verb: "list", resource: "secrets"},
		controllerSA: {namespace: otherNamespace, verb: "create", resource: "secrets"},
	}
	deadline := time.Now().Add(15 * time.Second)
	for who, a := range probes {
		waitAllowed(t, deadline, func() (bool, error) { return c.allowed(ctx, who, a) },
			fmt.Sprintf("%s never got %+v: the chart's RBAC does not grant it", who, a))
	}
}

// waitAllowed polls allowed until it says yes, and fails the test with why
// when deadline passes first: the authorizer sees new RBAC objects a moment
// after they are written.
func waitAllowed(t *testing.T, deadline time.Time, allowed func() (bool, error), why string) {
	t.Helper()
	for {
		ok, err := allowed()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRBACLeastPrivilege asks the real API server's RBAC authorizer what the
// chart's ServiceAccounts may do.
func TestRBACLeastPrivilege(t *testing.T) {
	c := getCluster(t)
	installRBAC(t, c)
	const auth = "auth.tokensmith.io"
	cases := []struct {
		name    string
		who     sa
		access  access
		allowed bool
	}{
		{"the token server can list Secrets in its own namespace", serverSA, access{namespace: releaseNamespace, verb: "list", resource: "secrets"}, true},
		{"the token server can watch Secrets in its own namespace", serverSA, access{namespace: releaseNamespace, verb: "watch", resource: "secrets"}, true},
		{"the token server can get a Secret in its own namespace", serverSA, access{namespace: releaseNamespace, verb: "get", resource: "secrets", name: "tokensmith-signing-keys"}, true},
		{"the token server cannot list Secrets in another namespace", serverSA, access{namespace: otherNamespace, verb: "list", resource: "secrets"}, false},
		{"the token server cannot get a Secret in another namespace", serverSA, access{namespace: otherNamespace, verb: "get", resource: "secrets", name: "app-credentials"}, false},
		{"the token server cannot list Secrets cluster-wide", serverSA, access{verb: "list", resource: "secrets"}, false},
		{"the token server cannot create Secrets", serverSA, access{namespace: releaseNamespace, verb: "create", resource: "secrets"}, false},
		{"the token server can update the revocation list", serverSA, access{namespace: releaseNamespace, verb: "update", resource: "secrets", name: "tokensmith-revocations"}, true},
		{"the token server can patch the revocation list", serverSA, access{namespace: releaseNamespace, verb: "patch", resource: "secrets", name: "tokensmith-revocations"}, true},
		{"the token server cannot delete the revocation list", serverSA, access{namespace: releaseNamespace, verb: "delete", resource: "secrets", name: "tokensmith-revocations"}, false},
		{"the token server cannot update the signing keys", serverSA, access{namespace: releaseNamespace, verb: "update", resource: "secrets", name: "tokensmith-signing-keys"}, false},
		{"the token server cannot patch a verifier", serverSA, access{namespace: releaseNamespace, verb: "patch", resource: "secrets", name: "client-team-a-app-0badc0de"}, false},
		{"the token server can patch users/status in any namespace", serverSA, access{namespace: otherNamespace, verb: "patch", group: auth, resource: "users", subresource: "status", name: "alice"}, true},
		{"the token server cannot update users/status", serverSA, access{namespace: otherNamespace, verb: "update", group: auth, resource: "users", subresource: "status", name: "alice"}, false},
		{"the token server cannot patch users", serverSA, access{namespace: otherNamespace, verb: "patch", group: auth, resource: "users", name: "alice"}, false},
		{"the token server cannot read users", serverSA, access{namespace: otherNamespace, verb: "get", group: auth, resource: "users", name: "alice"}, false},
		{"the token server cannot patch oauthclients/status", serverSA, access{namespace: otherNamespace, verb: "patch", group: auth, resource: "oauthclients", subresource: "status", name: "app"}, false},
		{"the token server can create TokenReviews (ServiceAccount tokens as client credentials)", serverSA, access{verb: "create", group: "authentication.k8s.io", resource: "tokenreviews"}, true},
		{"the token server cannot create SubjectAccessReviews", serverSA, access{verb: "create", group: "authorization.k8s.io", resource: "subjectaccessreviews"}, false},
		{"the token server cannot read pods", serverSA, access{namespace: otherNamespace, verb: "list", resource: "pods"}, false},
		{"the token server cannot read ServiceAccounts", serverSA, access{namespace: otherNamespace, verb: "get", resource: "serviceaccounts", name: "app"}, false},
		{"the token server cannot mint ServiceAccount tokens", serverSA, access{namespace: otherNamespace, verb: "create", resource: "serviceaccounts", subresource: "token", name: "app"}, false},
		{"the token server cannot take the controller's leader lease", serverSA, access{namespace: releaseNamespace, verb: "update", group: "coordination.k8s.io", resource: "leases", name: "tokensmith-controller"}, false},

		{"the controller can create Secrets in any namespace", controllerSA, access{namespace: otherNamespace, verb: "create", resource: "secrets"}, true},
		{"the controller can update Secrets in any namespace", controllerSA, access{namespace: otherNamespace, verb: "update", resource: "secrets", name: "app-credentials"}, true},
		{"the controller can delete a verifier in the server namespace", controllerSA, access{namespace: releaseNamespace, verb: "delete", resource: "secrets", name: "client-team-a-app-0badc0de"}, true},
		{"the controller can watch Secrets cluster-wide", controllerSA, access{verb: "watch", resource: "secrets"}, true},
		{"the controller can watch OAuthClients cluster-wide", controllerSA, access{verb: "watch", group: auth, resource: "oauthclients"}, true},
		{"the controller can watch Users cluster-wide", controllerSA, access{verb: "watch", group: auth, resource: "users"}, true},
		{"the controller can patch oauthclients/status", controllerSA, access{namespace: otherNamespace, verb: "patch", group: auth, resource: "oauthclients", subresource: "status", name: "app"}, true},
		{"the controller can patch users/status", controllerSA, access{namespace: otherNamespace, verb: "patch", group: auth, resource: "users", subresource: "status", name: "alice"}, true},
		{"the controller can update oauthclients/finalizers", controllerSA, access{namespace: otherNamespace, verb: "update", group: auth, resource: "oauthclients", subresource: "finalizers", name: "app"}, true},
		{"the controller can record events in any namespace", controllerSA, access{namespace: otherNamespace, verb: "create", group: "events.k8s.io", resource: "events"}, true},
		{"the controller can hold its leader lease in the release namespace", controllerSA, access{namespace: releaseNamespace, verb: "update", group: "coordination.k8s.io", resource: "leases", name: "tokensmith-controller"}, true},
		{"the controller cannot touch leases in other namespaces", controllerSA, access{namespace: otherNamespace, verb: "create", group: "coordination.k8s.io", resource: "leases"}, false},
		{"the controller cannot create OAuthClients", controllerSA, access{namespace: otherNamespace, verb: "create", group: auth, resource: "oauthclients"}, false},
		{"the controller cannot delete Users", controllerSA, access{namespace: otherNamespace, verb: "delete", group: auth, resource: "users", name: "alice"}, false},
		{"the controller cannot create pods", controllerSA, access{namespace: releaseNamespace, verb: "create", resource: "pods"}, false},
		{"the controller cannot read ConfigMaps", controllerSA, access{namespace: otherNamespace, verb: "get", resource: "configmaps"}, false},
		{"the controller cannot grant itself more RBAC", controllerSA, access{verb: "create", group: "rbac.authorization.k8s.io", resource: "clusterrolebindings"}, false},
		{"the controller can watch TokenPolicies", controllerSA, access{verb: "watch", group: auth, resource: "tokenpolicies"}, true},
		{"the controller cannot change a TokenPolicy", controllerSA, access{verb: "update", group: auth, resource: "tokenpolicies", name: "team-a"}, false},
		{"the controller can update the TokenPolicySnapshot", controllerSA, access{verb: "update", group: auth, resource: "tokenpolicysnapshots", name: "tokensmith"}, true},
		{"the controller can watch Namespaces (their labels select TokenPolicies)", controllerSA, access{verb: "watch", resource: "namespaces"}, true},
		{"the controller cannot label Namespaces", controllerSA, access{verb: "patch", resource: "namespaces", name: otherNamespace}, false},
		{"the controller cannot edit CRDs", controllerSA, access{verb: "update", group: "apiextensions.k8s.io", resource: "customresourcedefinitions", name: "users.auth.tokensmith.io"}, false},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.allowed(ctx, tc.who, tc.access)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.allowed {
				t.Errorf("%s %+v: allowed=%v, want %v", tc.who, tc.access, got, tc.allowed)
			}
		})
	}

	// A real request under the server's identity agrees with the reviews.
	t.Run("real requests impersonating the token server agree", func(t *testing.T) {
		cfg := rest.CopyConfig(c.cfg)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: serverSA.user(), Groups: serverSA.groups()}
		kube, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kube.CoreV1().Secrets(releaseNamespace).List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("listing Secrets in %s: %v", releaseNamespace, err)
		}
		if _, err := kube.CoreV1().Secrets(otherNamespace).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("listing Secrets in %s: err=%v, want Forbidden", otherNamespace, err)
		}
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tokensmith-revocations", Namespace: releaseNamespace}}
		if _, err := kube.CoreV1().Secrets(releaseNamespace).Create(ctx, s, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("creating a Secret: err=%v, want Forbidden", err)
		}
		tr := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: "not-a-token"}}
		if got, err := kube.AuthenticationV1().TokenReviews().Create(ctx, tr, metav1.CreateOptions{}); err != nil || got.Status.Authenticated {
			t.Errorf("a TokenReview: %+v, %v; want an answer, not authenticated", got, err)
		}
	})
}
