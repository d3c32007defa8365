package e2e

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/testenv"
)

// TestANamespaceEditorGetsSelfServiceWithinItsTokenPolicy is issue 20's
// proof: a person bound only to the built-in "edit" role in team-a, with the
// chart's aggregated roles and admission policy, and the real binaries.
func TestANamespaceEditorGetsSelfServiceWithinItsTokenPolicy(t *testing.T) {
	ctx := context.Background()
	const teamA, teamB = "tenancy-team-a", "tenancy-team-b"
	for ns, team := range map[string]string{teamA: "a", teamB: "b"} {
		if err := suite.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"tenancy.test/team": team}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := testenv.AggregateClusterRoles(ctx, suite.k8s); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-edit", Namespace: teamA},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "alice"}},
	}
	if err := suite.k8s.Create(ctx, rb); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", suite.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Impersonate.UserName, cfg.Impersonate.Groups = "alice", []string{"system:authenticated"}
	alice, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}

	// The platform team's policies: every namespace outside this test keeps
	// working (a catch-all), team-a gets its own scopes, one grant, 1h tokens
	// and its own usernames; team-b has a policy of its own.
	policies := []*authv1alpha1.TokenPolicy{
		{ObjectMeta: metav1.ObjectMeta{Name: "everyone-else"}, Spec: authv1alpha1.TokenPolicySpec{
			NamespaceSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tenancy.test/team", Operator: metav1.LabelSelectorOpDoesNotExist}}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}, Spec: authv1alpha1.TokenPolicySpec{
			NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{"tenancy.test/team": "a"}},
			Scopes:            &authv1alpha1.ScopeBounds{Prefixes: []string{"{namespace}:"}},
			Audiences:         &authv1alpha1.AudienceBounds{Prefixes: []string{"https://{namespace}.apps.test/"}},
			GrantTypes:        []authv1alpha1.GrantType{authv1alpha1.GrantClientCredentials},
			MaxAccessTokenTTL: &metav1.Duration{Duration: time.Hour},
			Usernames:         &authv1alpha1.UsernameBounds{Suffixes: []string{"@a.example.com"}},
		}},
		{ObjectMeta: metav1.ObjectMeta{Name: "team-b"}, Spec: authv1alpha1.TokenPolicySpec{
			NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{"tenancy.test/team": "b"}},
			Usernames:         &authv1alpha1.UsernameBounds{Suffixes: []string{"@b.example.com"}},
		}},
	}
	for _, p := range policies {
		if err := suite.k8s.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for i := len(policies) - 1; i >= 0; i-- {
			_ = suite.k8s.Delete(ctx, policies[i])
		}
	})

	oc := func(name string, mutate func(*authv1alpha1.OAuthClient)) *authv1alpha1.OAuthClient {
		o := &authv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: teamA, Name: name},
			Spec: authv1alpha1.OAuthClientSpec{Scopes: []string{teamA + ":orders"}, AccessTokenTTL: &metav1.Duration{Duration: 30 * time.Minute}}}
		if mutate != nil {
			mutate(o)
		}
		return o
	}
	// Admission sees the policies once the controller has copied them into
	// the snapshot and the API server has seen that: wait for a refusal.
	eventually(t, 20*time.Second, "admission to refuse a scope outside team-a's policy", func() bool {
		err := alice.Create(ctx, oc("probe", func(o *authv1alpha1.OAuthClient) { o.Spec.Scopes = []string{"admin"} }), client.DryRunAll)
		// Not just any refusal: team-a's own policy must be in the snapshot.
		return apierrors.IsForbidden(err) && strings.Contains(err.Error(), `team-a refuses spec.scopes "admin"`)
	})

	t.Run("the editor creates a client within the policy, and it gets tokens", func(t *testing.T) {
		if err := alice.Create(ctx, oc("orders", nil)); err != nil {
			t.Fatal(err)
		}
		waitClientReady(t, teamA, "orders")
	})
	creds := readSecret(t, teamA, "orders-credentials")
	token := func() int {
		return postForm(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"},
			"client_id": {creds["CLIENT_ID"]}, "client_secret": {creds["CLIENT_SECRET"]}}).status
	}
	if status := token(); status != http.StatusOK {
		t.Fatalf("a token for the new client, Ready, refused at once: status %d", status)
	}

	const denied = `ValidatingAdmissionPolicy 'tokensmith-oauthclients' with binding 'tokensmith-oauthclients' denied request: ` +
		`no TokenPolicy selecting namespace "tenancy-team-a" allows this OAuthClient: team-a refuses `
	refusals := []struct {
		name string
		obj  client.Object
		want string
	}{
		{"a scope outside the policy", oc("bad-scope", func(o *authv1alpha1.OAuthClient) { o.Spec.Scopes = []string{"tenancy-team-b:orders"} }),
			denied + `spec.scopes "tenancy-team-b:orders" (rule scopes)`},
		{"a grant outside the policy", oc("bad-grant", func(o *authv1alpha1.OAuthClient) {
			o.Spec.GrantTypes = []authv1alpha1.GrantType{authv1alpha1.GrantClientCredentials, authv1alpha1.GrantPassword}
		}), denied + `spec.grantTypes "password" (rule grantTypes)`},
		// Issue 32's attack: a scope the policy allows, and another team's API as the audience.
		{"another team's audience", oc("bad-audience", func(o *authv1alpha1.OAuthClient) { o.Spec.Audiences = []string{"https://payments.internal"} }),
			denied + `spec.audiences "https://payments.internal" (rule audiences)`},
		{"a TTL over the policy's maximum", oc("bad-ttl", func(o *authv1alpha1.OAuthClient) { o.Spec.AccessTokenTTL = &metav1.Duration{Duration: 2 * time.Hour} }),
			denied + `spec.accessTokenTTL 2h0m0s over 1h0m0s (rule maxAccessTokenTTL)`},
		{"a username outside the namespace's pattern", &authv1alpha1.User{ObjectMeta: metav1.ObjectMeta{Namespace: teamA, Name: "admin"},
			Spec: authv1alpha1.UserSpec{Username: "admin@company.com"}},
			`ValidatingAdmissionPolicy 'tokensmith-users' with binding 'tokensmith-users' denied request: ` +
				`no TokenPolicy selecting namespace "tenancy-team-a" allows this User: team-a refuses spec.username "admin@company.com" (rule usernames)`},
	}
	for _, tc := range refusals {
		t.Run("admission refuses "+tc.name+" with a message naming the rule", func(t *testing.T) {
			err := alice.Create(ctx, tc.obj)
			if !apierrors.IsForbidden(err) {
				t.Fatalf("err = %v, want Forbidden", err)
			}
			if got := err.(apierrors.APIStatus).Status().Message; !strings.HasSuffix(got, tc.want) {
				t.Errorf("message\n got %s\nwant …%s", got, tc.want)
			}
		})
	}
	t.Run("the editor creates a user within the namespace's pattern", func(t *testing.T) {
		if err := alice.Create(ctx, &authv1alpha1.User{ObjectMeta: metav1.ObjectMeta{Namespace: teamA, Name: "dana"},
			Spec: authv1alpha1.UserSpec{Username: "dana@a.example.com"}}); err != nil {
			t.Fatal(err)
		}
		waitUserReady(t, teamA, "dana")
	})
	t.Run("the editor cannot touch another namespace", func(t *testing.T) {
		o := oc("intruder", nil)
		o.Namespace = teamB
		if err := alice.Create(ctx, o); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `User "alice" cannot create resource "oauthclients"`) {
			t.Errorf("creating in %s: %v, want Forbidden by RBAC", teamB, err)
		}
		var list authv1alpha1.OAuthClientList
		if err := alice.List(ctx, &list, client.InNamespace(teamB)); !apierrors.IsForbidden(err) {
			t.Errorf("listing in %s: %v, want Forbidden", teamB, err)
		}
		var s corev1.Secret
		if err := alice.Get(ctx, client.ObjectKey{Namespace: serverNamespace, Name: "tokensmith-signing-keys"}, &s); !apierrors.IsForbidden(err) {
			t.Errorf("reading the signing keys: %v, want Forbidden", err)
		}
		p := &authv1alpha1.TokenPolicy{}
		if err := alice.Get(ctx, client.ObjectKey{Name: "team-a"}, p); !apierrors.IsForbidden(err) {
			t.Errorf("reading the TokenPolicy: %v, want Forbidden", err)
		}
	})

	setPrefixes := func(prefixes ...string) {
		t.Helper()
		p := &authv1alpha1.TokenPolicy{}
		if err := suite.k8s.Get(ctx, client.ObjectKey{Name: "team-a"}, p); err != nil {
			t.Fatal(err)
		}
		p.Spec.Scopes.Prefixes = prefixes
		if err := suite.k8s.Update(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("a policy tightened later stops the client's tokens within a second", func(t *testing.T) {
		start := time.Now()
		setPrefixes("{namespace}:payments.")
		eventually(t, 5*time.Second, "token requests to fail", func() bool { return token() == http.StatusUnauthorized })
		took := time.Since(start)
		t.Logf("FIGURES tokens refused %v after the TokenPolicy was tightened", took)
		if took > time.Second {
			t.Errorf("tokens refused only after %v, want within a second", took)
		}
		got := &authv1alpha1.OAuthClient{}
		eventually(t, 5*time.Second, "Ready=False, reason PolicyDenied", func() bool {
			return suite.k8s.Get(ctx, client.ObjectKey{Namespace: teamA, Name: "orders"}, got) == nil &&
				slices.ContainsFunc(got.Status.Conditions, func(c metav1.Condition) bool { return c.Reason == authv1alpha1.ReasonPolicyDenied })
		})
	})
	t.Run("relaxing it restores the same credentials", func(t *testing.T) {
		setPrefixes("{namespace}:")
		eventually(t, 5*time.Second, "token requests to succeed again", func() bool { return token() == http.StatusOK })
		if again := readSecret(t, teamA, "orders-credentials"); again["CLIENT_SECRET"] != creds["CLIENT_SECRET"] || again["CLIENT_ID"] != creds["CLIENT_ID"] {
			t.Error("the consumer Secret's credentials changed")
		}
		waitClientReady(t, teamA, "orders")
	})

	t.Run("narrowing the audiences stops an existing client's tokens for the audience it leaves within a second", func(t *testing.T) {
		const audience = "https://" + teamA + ".apps.test/partner"
		if err := alice.Create(ctx, oc("partner", func(o *authv1alpha1.OAuthClient) { o.Spec.Audiences = []string{audience} })); err != nil {
			t.Fatal(err)
		}
		waitClientReady(t, teamA, "partner")
		pc := readSecret(t, teamA, "partner-credentials")
		r := servedAtReady(t, "partner", postForm(t, "/oauth/token", url.Values{"grant_type": {"client_credentials"},
			"client_id": {pc["CLIENT_ID"]}, "client_secret": {pc["CLIENT_SECRET"]}}))
		access, _ := r.json(t)["access_token"].(string)
		remember(access)
		verify := func() int {
			req, _ := http.NewRequest(http.MethodGet, suite.baseURL+"/auth/verify?audience="+url.QueryEscape(audience), nil)
			req.Header.Set("Authorization", "Bearer "+access)
			return do(t, req).status
		}
		// A resource server asks with its own credentials (the orders client's).
		active := func() any {
			req, _ := http.NewRequest(http.MethodPost, suite.baseURL+"/oauth/introspect", strings.NewReader(url.Values{"token": {access}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(creds["CLIENT_ID"], creds["CLIENT_SECRET"])
			return do(t, req).json(t)["active"]
		}
		if status, a := verify(), active(); status != http.StatusOK || a != true {
			t.Fatalf("before the bound narrows: forward-auth %d, introspection active %v; want 200 and true", status, a)
		}

		p := &authv1alpha1.TokenPolicy{}
		if err := suite.k8s.Get(ctx, client.ObjectKey{Name: "team-a"}, p); err != nil {
			t.Fatal(err)
		}
		p.Spec.Audiences = &authv1alpha1.AudienceBounds{Names: []string{"https://" + teamA + ".apps.test/orders"}}
		start := time.Now()
		if err := suite.k8s.Update(ctx, p); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "forward-auth to refuse the partner's token", func() bool { return verify() == http.StatusUnauthorized })
		took := time.Since(start)
		t.Logf("FIGURES a token refused %v after its audience left the TokenPolicy", took)
		if took > time.Second {
			t.Errorf("refused only after %v, want within a second", took)
		}
		if a := active(); a != false {
			t.Errorf("introspection active = %v after the audience left the policy, want false", a)
		}
		got := &authv1alpha1.OAuthClient{}
		eventually(t, 5*time.Second, "Ready=False, reason PolicyDenied naming the audiences rule", func() bool {
			if suite.k8s.Get(ctx, client.ObjectKey{Namespace: teamA, Name: "partner"}, got) != nil {
				return false
			}
			c := meta.FindStatusCondition(got.Status.Conditions, authv1alpha1.ConditionReady)
			return c != nil && c.Reason == authv1alpha1.ReasonPolicyDenied && strings.Contains(c.Message, `spec.audiences "`+audience+`" (rule audiences)`)
		})
		if status := token(); status != http.StatusOK {
			t.Errorf("the orders client, without audiences, got %d after the audiences narrowed; want 200", status)
		}
	})
}
