package chart_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/tenancy"
	"github.com/tokensmith/tokensmith/internal/testenv"
)

// tenantNamespace is a second application namespace, next to otherNamespace.
const tenantNamespace = "team-b"

// tenant is a person bound to one built-in namespace role in otherNamespace.
type tenant struct{ user, role string }

var (
	editor = tenant{"alice", "edit"}
	viewer = tenant{"bob", "view"}
	admin  = tenant{"carol", "admin"}
)

func (c *cluster) tenantAllowed(ctx context.Context, who tenant, a access) (bool, error) {
	return c.review(ctx, who.user, []string{"system:authenticated"}, a)
}

// installTenantRBAC applies the default render's RBAC, aggregates it into the
// built-in roles, and binds each tenant to its role in otherNamespace only.
func installTenantRBAC(t *testing.T, c *cluster) {
	t.Helper()
	ctx := context.Background()
	installRBAC(t, c)
	if _, err := c.kube.CoreV1().Namespaces().Get(ctx, tenantNamespace, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tenantNamespace}}
		if _, err := c.kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	k8s, err := client.New(c.cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.AggregateClusterRoles(ctx, k8s); err != nil {
		t.Fatal(err)
	}
	for _, who := range []tenant{editor, viewer, admin} {
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: who.user + "-" + who.role, Namespace: otherNamespace},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: who.role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: who.user}},
		}
		_, err := c.kube.RbacV1().RoleBindings(otherNamespace).Create(ctx, rb, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	probe := access{namespace: otherNamespace, verb: "create", group: "auth.tokensmith.io", resource: "oauthclients"}
	waitAllowed(t, time.Now().Add(15*time.Second), func() (bool, error) { return c.tenantAllowed(ctx, editor, probe) },
		"a namespace editor never got to create OAuthClients: the chart's roles do not aggregate into edit")
}

// TestTenantRBACThroughAggregatedRoles asks the real RBAC authorizer what
// people holding the built-in namespace roles may do with tokensmith objects.
func TestTenantRBACThroughAggregatedRoles(t *testing.T) {
	c := getCluster(t)
	installTenantRBAC(t, c)
	const auth = "auth.tokensmith.io"
	ns := otherNamespace
	cases := []struct {
		name    string
		who     tenant
		access  access
		allowed bool
	}{
		{"an editor can create OAuthClients in the namespace", editor, access{namespace: ns, verb: "create", group: auth, resource: "oauthclients"}, true},
		{"an editor can update an OAuthClient", editor, access{namespace: ns, verb: "update", group: auth, resource: "oauthclients", name: "app"}, true},
		{"an editor can patch an OAuthClient", editor, access{namespace: ns, verb: "patch", group: auth, resource: "oauthclients", name: "app"}, true},
		{"an editor can delete an OAuthClient", editor, access{namespace: ns, verb: "delete", group: auth, resource: "oauthclients", name: "app"}, true},
		{"an editor can create Users in the namespace", editor, access{namespace: ns, verb: "create", group: auth, resource: "users"}, true},
		{"an editor can update a User", editor, access{namespace: ns, verb: "update", group: auth, resource: "users", name: "alice"}, true},
		{"an editor can delete a User", editor, access{namespace: ns, verb: "delete", group: auth, resource: "users", name: "alice"}, true},
		{"an editor can list OAuthClients", editor, access{namespace: ns, verb: "list", group: auth, resource: "oauthclients"}, true},
		{"an editor cannot create OAuthClients in another namespace", editor, access{namespace: tenantNamespace, verb: "create", group: auth, resource: "oauthclients"}, false},
		{"an editor cannot list Users in another namespace", editor, access{namespace: tenantNamespace, verb: "list", group: auth, resource: "users"}, false},
		{"an editor cannot write OAuthClient status", editor, access{namespace: ns, verb: "patch", group: auth, resource: "oauthclients", subresource: "status", name: "app"}, false},
		{"an editor cannot write User status", editor, access{namespace: ns, verb: "patch", group: auth, resource: "users", subresource: "status", name: "alice"}, false},
		{"an editor cannot create TokenPolicies", editor, access{verb: "create", group: auth, resource: "tokenpolicies"}, false},
		{"an editor cannot update the TokenPolicySnapshot", editor, access{verb: "update", group: auth, resource: "tokenpolicysnapshots", name: "tokensmith"}, false},
		{"an admin can create Users in the namespace", admin, access{namespace: ns, verb: "create", group: auth, resource: "users"}, true},
		{"an admin can delete OAuthClients in the namespace", admin, access{namespace: ns, verb: "delete", group: auth, resource: "oauthclients", name: "app"}, true},
		{"an admin cannot delete TokenPolicies", admin, access{verb: "delete", group: auth, resource: "tokenpolicies", name: "team-a"}, false},
		{"a viewer can get an OAuthClient", viewer, access{namespace: ns, verb: "get", group: auth, resource: "oauthclients", name: "app"}, true},
		{"a viewer can list Users", viewer, access{namespace: ns, verb: "list", group: auth, resource: "users"}, true},
		{"a viewer can watch OAuthClients", viewer, access{namespace: ns, verb: "watch", group: auth, resource: "oauthclients"}, true},
		{"a viewer cannot create an OAuthClient", viewer, access{namespace: ns, verb: "create", group: auth, resource: "oauthclients"}, false},
		{"a viewer cannot delete a User", viewer, access{namespace: ns, verb: "delete", group: auth, resource: "users", name: "alice"}, false},
		{"a viewer cannot read Secrets", viewer, access{namespace: ns, verb: "get", resource: "secrets", name: "app-credentials"}, false},
		{"a viewer cannot list Secrets", viewer, access{namespace: ns, verb: "list", resource: "secrets"}, false},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.tenantAllowed(ctx, tc.who, tc.access)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.allowed {
				t.Errorf("%s (%s) %+v: allowed=%v, want %v", tc.who.user, tc.who.role, tc.access, got, tc.allowed)
			}
		})
	}
}

func TestTenancyValuesTurnItOff(t *testing.T) {
	on := render(t, "")
	for _, kind := range []string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
		if n := len(ofKind(on, kind)); n != 2 {
			t.Errorf("%d %ss by default, want 2 (OAuthClients and Users)", n, kind)
		}
	}
	for _, name := range []string{"tokensmith-edit", "tokensmith-view"} {
		if find(on, "ClusterRole", name) == nil {
			t.Errorf("no aggregated ClusterRole %s by default", name)
		}
	}
	off := render(t, "tenancy: {aggregateRoles: false, admissionPolicy: false}")
	for _, kind := range []string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
		if n := len(ofKind(off, kind)); n != 0 {
			t.Errorf("tenancy.admissionPolicy=false still renders %d %ss", n, kind)
		}
	}
	for _, name := range []string{"tokensmith-edit", "tokensmith-view"} {
		if find(off, "ClusterRole", name) != nil {
			t.Errorf("tenancy.aggregateRoles=false still renders ClusterRole %s", name)
		}
	}
	// "Deny unless allowed" reaches both enforcers: the controller's flag,
	// and admission before the controller has written any snapshot.
	for values, want := range map[string]string{"": "Allow", "tenancy: {denyUnlessAllowed: true}": "Deny"} {
		objs := render(t, values)
		for _, b := range ofKind(objs, "ValidatingAdmissionPolicyBinding") {
			if got, _, _ := unstructured.NestedString(b.Object, "spec", "paramRef", "parameterNotFoundAction"); got != want {
				t.Errorf("values %q: binding %s parameterNotFoundAction %q, want %q", values, b.GetName(), got, want)
			}
		}
		ctrl := convert[appsv1.Deployment](t, find(objs, "Deployment", "tokensmith-controller"))
		args := ctrl.Spec.Template.Spec.Containers[0].Args
		if got := flagValue(args, "--deny-unless-allowed"); got != fmt.Sprint(want == "Deny") {
			t.Errorf("values %q: --deny-unless-allowed=%q", values, got)
		}
		if got := flagValue(args, "--policy-snapshot"); got != "tokensmith" {
			t.Errorf("--policy-snapshot=%q, want the release's fullname (the bindings' paramRef)", got)
		}
	}
}

var (
	snapshotGVR = schema.GroupVersionResource{Group: "auth.tokensmith.io", Version: "v1alpha1", Resource: "tokenpolicysnapshots"}
	clientGVR   = schema.GroupVersionResource{Group: "auth.tokensmith.io", Version: "v1alpha1", Resource: "oauthclients"}
	userGVR     = schema.GroupVersionResource{Group: "auth.tokensmith.io", Version: "v1alpha1", Resource: "users"}
)

func mustYAML(t *testing.T, s string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(s), &u.Object); err != nil {
		t.Fatalf("test YAML: %v\n%s", err, s)
	}
	return u
}

// setSnapshot writes the TokenPolicySnapshot of policies (a YAML list of
// TokenPolicies) with the controller's own code; "" deletes it.
func (c *cluster) setSnapshot(ctx context.Context, t *testing.T, policies string) tenancy.Policies {
	t.Helper()
	ri := c.dyn.Resource(snapshotGVR)
	if policies == "" {
		if err := ri.Delete(ctx, "tokensmith", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return tenancy.Policies{}
	}
	var items []authv1alpha1.TokenPolicy
	if err := yaml.UnmarshalStrict([]byte(policies), &items); err != nil {
		t.Fatalf("test policies: %v", err)
	}
	p := tenancy.FromTokenPolicies(items, false)
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(p.Snapshot("tokensmith"))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	if _, err := ri.Apply(ctx, "tokensmith", u, metav1.ApplyOptions{FieldManager: "chart-test", Force: true}); err != nil {
		t.Fatalf("writing the snapshot: %v", err)
	}
	return p
}

// TestAdmissionPolicyEnforcesTheUnionOfTokenPolicies installs the chart's
// ValidatingAdmissionPolicies and has the real API server judge OAuthClients
// and Users against a TokenPolicySnapshot written as the controller writes it.
func TestAdmissionPolicyEnforcesTheUnionOfTokenPolicies(t *testing.T) {
	c := getCluster(t)
	ctx := context.Background()
	objs := render(t, "")
	for _, kind := range []string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
		for _, o := range ofKind(objs, kind) {
			if err := c.apply(ctx, o, false); err != nil {
				t.Fatalf("applying %s %s: %v", kind, o.GetName(), err)
			}
		}
	}
	t.Cleanup(func() {
		c.setSnapshot(ctx, t, "")
		for _, kind := range []string{"ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicy"} {
			for _, o := range ofKind(objs, kind) {
				gvr := schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: strings.ToLower(kind) + "s"}
				_ = c.dyn.Resource(gvr).Delete(ctx, o.GetName(), metav1.DeleteOptions{})
			}
		}
	})
	for ns, l := range map[string]string{otherNamespace: "a", tenantNamespace: "b"} {
		patch := fmt.Sprintf(`{"metadata":{"labels":{"team":%q}}}`, l)
		if _, err := c.kube.CoreV1().Namespaces().Patch(ctx, ns, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				if _, err := c.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"team": l}}}, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				continue
			}
			t.Fatal(err)
		}
	}

	create := func(gvr schema.GroupVersionResource, ns, doc string) error {
		u := mustYAML(t, doc)
		u.SetNamespace(ns)
		_, err := c.dyn.Resource(gvr).Namespace(ns).Create(ctx, u, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	}
	client := func(name, spec string) string {
		return "apiVersion: auth.tokensmith.io/v1alpha1\nkind: OAuthClient\nmetadata: {name: " + name + "}\nspec: " + spec
	}
	user := func(name, username string) string {
		return "apiVersion: auth.tokensmith.io/v1alpha1\nkind: User\nmetadata: {name: " + name + "}\nspec: {username: " + username + "}"
	}

	// With no snapshot at all (the controller never ran): today's behaviour.
	c.setSnapshot(ctx, t, "")
	if err := create(clientGVR, otherNamespace, client("anything", "{scopes: [admin], grantTypes: [password, refresh_token], accessTokenTTL: 8000h}")); err != nil {
		t.Fatalf("with no TokenPolicySnapshot, an OAuthClient was refused: %v", err)
	}

	// Two policies select team-a (one for its own scopes, one shared read
	// scope); one selects team-b.
	policies := c.setSnapshot(ctx, t, `
- metadata: {name: team-b}
  spec:
    namespaceSelector: {matchLabels: {team: b}}
    scopes: {prefixes: ["{namespace}:"]}
    usernames: {suffixes: ["@b.example.com"]}
- metadata: {name: shared-read}
  spec:
    namespaceSelector: {matchExpressions: [{key: team, operator: In, values: [a, b]}]}
    scopes: {names: [read]}
    usernames: {}
    grantTypes: [client_credentials]
    tokenFormats: [jwt]
    maxAccessTokenTTL: 1h
- metadata: {name: team-a}
  spec:
    namespaceSelector: {matchLabels: {team: a}}
    scopes: {prefixes: ["{namespace}:"], names: [orders]}
    audiences: {prefixes: ["https://{namespace}.example.com/"], names: [billing]}
    grantTypes: [client_credentials, password, refresh_token]
    tokenFormats: [jwt]
    maxAccessTokenTTL: 24h
    maxRefreshTokenTTL: 720h
    usernames: {suffixes: ["@a.example.com"], prefixes: ["{namespace}/"]}
    numericIDs: {min: 1000, max: 1999}
    allowServiceAccountBinding: false
`)
	// The API server sees a new parameter after its informer does: wait for
	// an object that only the snapshot forbids to be refused.
	deadline := time.Now().Add(20 * time.Second)
	for create(clientGVR, tenantNamespace, client("probe", "{scopes: [team-a:x]}")) == nil ||
		create(userGVR, tenantNamespace, user("probe", "probe@a.example.com")) == nil {
		if time.Now().After(deadline) {
			for _, n := range []string{"tokensmith-oauthclients", "tokensmith-users"} {
				vap, _ := c.kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, n, metav1.GetOptions{})
				t.Logf("%s status: %+v", n, vap.Status)
			}
			t.Logf("client: %v", create(clientGVR, tenantNamespace, client("probe", "{scopes: [team-a:x]}")))
			t.Logf("user: %v", create(userGVR, tenantNamespace, user("probe", "probe@a.example.com")))
			t.Fatal("the admission policy never refused an OAuthClient outside every TokenPolicy")
		}
		time.Sleep(100 * time.Millisecond)
	}

	const prefix = `ValidatingAdmissionPolicy 'tokensmith-oauthclients' with binding 'tokensmith-oauthclients' denied request: `
	const userPrefix = `ValidatingAdmissionPolicy 'tokensmith-users' with binding 'tokensmith-users' denied request: `
	const a = `no TokenPolicy selecting namespace "team-a" allows this OAuthClient: `
	cases := []struct {
		name string
		gvr  schema.GroupVersionResource
		ns   string
		doc  string
		want string // "" = admitted
	}{
		{"admits a client within one policy", clientGVR, otherNamespace, client("ok", "{scopes: [team-a:orders.read, orders], grantTypes: [password], accessTokenTTL: 2h}"), ""},
		{"admits a client within the other policy selecting the namespace", clientGVR, otherNamespace, client("ok", "{scopes: [read]}"), ""},
		{"admits a client whose numericID is in range", clientGVR, otherNamespace, client("ok", "{grantTypes: [password], numericID: 1500, accessTokenTTL: 1h}"), ""},
		{"admits a client in another team's namespace within its policy", clientGVR, tenantNamespace, client("ok", "{scopes: [team-b:x], grantTypes: [password], tokenFormat: opaque}"), ""},
		{"refuses a scope outside every policy", clientGVR, otherNamespace, client("bad", "{scopes: [team-a:x, admin]}"),
			prefix + a + `shared-read refuses spec.scopes "team-a:x" (rule scopes); team-a refuses spec.scopes "admin" (rule scopes)`},
		{"refuses another namespace's scope prefix", clientGVR, otherNamespace, client("bad", "{scopes: [team-b:x]}"),
			prefix + a + `shared-read refuses spec.scopes "team-b:x" (rule scopes); team-a refuses spec.scopes "team-b:x" (rule scopes)`},
		{"refuses a grant outside every policy", clientGVR, otherNamespace, client("bad", "{grantTypes: [session], numericID: 1500}"),
			prefix + a + `shared-read refuses spec.grantTypes "session" (rule grantTypes); team-a refuses spec.grantTypes "session" (rule grantTypes)`},
		{"refuses a token format outside every policy", clientGVR, otherNamespace, client("bad", "{tokenFormat: opaque}"),
			prefix + a + `shared-read refuses spec.tokenFormat "opaque" (rule tokenFormats); team-a refuses spec.tokenFormat "opaque" (rule tokenFormats)`},
		{"refuses an access-token TTL longer than every policy allows", clientGVR, otherNamespace, client("bad", "{accessTokenTTL: 48h0m0s}"),
			prefix + a + `shared-read refuses spec.accessTokenTTL 48h0m0s over 1h0m0s (rule maxAccessTokenTTL); team-a refuses spec.accessTokenTTL 48h0m0s over 24h0m0s (rule maxAccessTokenTTL)`},
		{"counts an unset access-token TTL as the password grant's default", clientGVR, otherNamespace, client("bad", "{grantTypes: [password]}"),
			prefix + a + `shared-read refuses spec.grantTypes "password" (rule grantTypes), spec.accessTokenTTL unset (8784h with the password grant) over 1h0m0s (rule maxAccessTokenTTL); ` +
				`team-a refuses spec.accessTokenTTL unset (8784h with the password grant) over 24h0m0s (rule maxAccessTokenTTL)`},
		{"refuses a refresh-token TTL longer than every policy allows", clientGVR, otherNamespace, client("bad", "{grantTypes: [password, refresh_token], accessTokenTTL: 1h, refreshTokenTTL: 2000h0m0s}"),
			prefix + a + `shared-read refuses spec.grantTypes "password" (rule grantTypes); team-a refuses spec.refreshTokenTTL 2000h0m0s over 720h0m0s (rule maxRefreshTokenTTL)`},
		{"refuses a numericID outside the range", clientGVR, otherNamespace, client("bad", "{grantTypes: [password], accessTokenTTL: 1h, numericID: 5}"),
			prefix + a + `shared-read refuses spec.grantTypes "password" (rule grantTypes); team-a refuses spec.numericID 5 outside 1000-1999 (rule numericIDs)`},
		{"admits audiences within the policy", clientGVR, otherNamespace, client("ok", `{scopes: [orders], audiences: ["https://team-a.example.com/orders", billing]}`), ""},
		{"admits a client without audiences (the issuer's) under an audience bound", clientGVR, otherNamespace, client("ok", `{scopes: [orders]}`), ""},
		{"refuses another team's audience", clientGVR, otherNamespace, client("bad", `{scopes: [orders], audiences: [billing, "https://team-b.example.com/"]}`),
			prefix + a + `shared-read refuses spec.scopes "orders" (rule scopes); team-a refuses spec.audiences "https://team-b.example.com/" (rule audiences)`},
		{"refuses a combination no single policy allows", clientGVR, otherNamespace, client("bad", "{scopes: [read, orders]}"),
			prefix + a + `shared-read refuses spec.scopes "orders" (rule scopes); team-a refuses spec.scopes "read" (rule scopes)`},
		{"refuses a ServiceAccount binding where every policy forbids it", clientGVR, otherNamespace, client("bad", "{scopes: [orders], serviceAccountName: reports}"),
			prefix + a + `shared-read refuses spec.scopes "orders" (rule scopes); team-a refuses spec.serviceAccountName "reports" (rule allowServiceAccountBinding)`},
		{"refuses every object in a namespace no policy selects", clientGVR, "default", client("bad", "{}"),
			prefix + `namespace "default" is selected by no TokenPolicy`},
		{"admits a username within the namespace's pattern", userGVR, otherNamespace, user("ok", "dana@a.example.com"), ""},
		{"admits a username derived from the namespace", userGVR, otherNamespace, user("ok", "team-a/dana"), ""},
		{"refuses a username outside the namespace's pattern", userGVR, otherNamespace, user("bad", "admin@company.com"),
			userPrefix + `no TokenPolicy selecting namespace "team-a" allows this User: shared-read refuses spec.username "admin@company.com" (rule usernames); team-a refuses spec.username "admin@company.com" (rule usernames)`},
		{"refuses another team's username", userGVR, tenantNamespace, user("bad", "dana@a.example.com"),
			userPrefix + `no TokenPolicy selecting namespace "team-b" allows this User: shared-read refuses spec.username "dana@a.example.com" (rule usernames); team-b refuses spec.username "dana@a.example.com" (rule usernames)`},
	}
	labelsOfNS := func(name string) tenancy.Namespace {
		ns, err := c.kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tenancy.Namespace{Name: name, Labels: ns.Labels}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The controller's twin (internal/tenancy) must judge alike, with the same words.
			var twin error
			if tc.gvr == clientGVR {
				var o authv1alpha1.OAuthClient
				if err := yaml.UnmarshalStrict([]byte(tc.doc), &o); err != nil {
					t.Fatal(err)
				}
				twin = policies.CheckClient(labelsOfNS(tc.ns), &o.Spec)
			} else {
				var o authv1alpha1.User
				if err := yaml.UnmarshalStrict([]byte(tc.doc), &o); err != nil {
					t.Fatal(err)
				}
				twin = policies.CheckUser(labelsOfNS(tc.ns), &o.Spec)
			}
			switch {
			case tc.want == "" && twin != nil:
				t.Errorf("the controller would deny what admission admits: %v", twin)
			case tc.want != "" && (twin == nil || !strings.HasSuffix(tc.want, ": "+twin.Error())):
				t.Errorf("the controller's message differs from admission's:\n got %v\nwant …%s", twin, tc.want)
			}
			err := create(tc.gvr, tc.ns, tc.doc)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("admitted; want %q", tc.want)
			}
			if !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) {
				t.Errorf("error is not Forbidden or Invalid: %v", err)
			}
			if got := err.(apierrors.APIStatus).Status().Message; !strings.HasSuffix(got, tc.want) {
				t.Errorf("message\n got %s\nwant …%s", got, tc.want)
			}
		})
	}
}
