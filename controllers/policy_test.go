package controllers

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/internal/tenancy"
)

// labelPolicyTest marks the namespaces a policy test governs; every other
// namespace of the suite stays allowed by a catch-all policy while one runs
// (once a TokenPolicy exists, a namespace no policy selects is denied).
const labelPolicyTest = "tokensmith.test/policy"

// withPolicies creates the catch-all policy, then policies, and deletes them
// all when the test ends.
func withPolicies(t *testing.T, policies ...*authv1alpha1.TokenPolicy) {
	t.Helper()
	ctx := context.Background()
	catchAll := &authv1alpha1.TokenPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "others"},
		Spec: authv1alpha1.TokenPolicySpec{NamespaceSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: labelPolicyTest, Operator: metav1.LabelSelectorOpDoesNotExist},
		}}},
	}
	all := append([]*authv1alpha1.TokenPolicy{catchAll}, policies...)
	for _, p := range all {
		create(t, p)
	}
	t.Cleanup(func() {
		for i := len(all) - 1; i >= 0; i-- {
			if err := k8s.Delete(ctx, all[i]); err != nil && !apierrors.IsNotFound(err) {
				t.Error(err)
			}
		}
	})
}

func policyNamespace(t *testing.T, team string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "team-" + team + "-", Labels: map[string]string{labelPolicyTest: team}}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func teamPolicy(team string, spec authv1alpha1.TokenPolicySpec) *authv1alpha1.TokenPolicy {
	spec.NamespaceSelector = metav1.LabelSelector{MatchLabels: map[string]string{labelPolicyTest: team}}
	return &authv1alpha1.TokenPolicy{ObjectMeta: metav1.ObjectMeta{Name: "team-" + team}, Spec: spec}
}

func verifierBytes(t *testing.T, name string) []byte {
	t.Helper()
	return getSecret(t, serverNamespace, name).Data[credstore.DataKey]
}

func readyMessage(obj client.Object) string {
	var conds []metav1.Condition
	switch o := obj.(type) {
	case *authv1alpha1.OAuthClient:
		conds = o.Status.Conditions
	case *authv1alpha1.User:
		conds = o.Status.Conditions
	}
	if c := meta.FindStatusCondition(conds, authv1alpha1.ConditionReady); c != nil {
		return c.Message
	}
	return ""
}

func TestTokenPolicyTightenedMarksAnExistingClientAndRelaxedRestoresIt(t *testing.T) {
	ctx := context.Background()
	ns := policyNamespace(t, "a")
	withPolicies(t, teamPolicy("a", authv1alpha1.TokenPolicySpec{Scopes: &authv1alpha1.ScopeBounds{Prefixes: []string{"{namespace}:"}}}))

	oc := newOC(ns, "app", func(oc *authv1alpha1.OAuthClient) { oc.Spec.Scopes = []string{ns + ":read"} })
	create(t, oc)
	waitReason(t, oc, authv1alpha1.ReasonIssued)
	vname := credstore.ClientVerifierName(ns, "app")
	before := verifierBytes(t, vname)
	consumer := getSecret(t, ns, "app-credentials").Data

	// Tighten: the policy now allows only "other:" scopes.
	p := &authv1alpha1.TokenPolicy{}
	if err := k8s.Get(ctx, types.NamespacedName{Name: "team-a"}, p); err != nil {
		t.Fatal(err)
	}
	p.Spec.Scopes.Prefixes = []string{"other:"}
	start := time.Now()
	if err := k8s.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitReason(t, oc, authv1alpha1.ReasonPolicyDenied)
	var v credstore.ClientVerifier
	for {
		if err := credstore.Decode(verifierBytes(t, vname), &v); err != nil {
			t.Fatal(err)
		}
		if v.PolicyDenied || time.Since(start) > 2*time.Second {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !v.PolicyDenied {
		t.Fatal("the verifier is not marked policyDenied")
	}
	t.Logf("verifier marked %v after the policy changed", time.Since(start))
	want := `no TokenPolicy selecting namespace "` + ns + `" allows this OAuthClient: team-a refuses spec.scopes "` + ns + `:read" (rule scopes)`
	if msg := readyMessage(oc); !strings.HasPrefix(msg, want) {
		t.Errorf("Ready message %q, want it to start with %q", msg, want)
	}
	waitWarning(t, ns, "app", EventPolicyDenied)

	// Relax: the verifier is exactly what it was, the consumer Secret untouched.
	if err := k8s.Get(ctx, types.NamespacedName{Name: "team-a"}, p); err != nil {
		t.Fatal(err)
	}
	p.Spec.Scopes.Prefixes = []string{"{namespace}:"}
	if err := k8s.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitReason(t, oc, authv1alpha1.ReasonIssued)
	eventually(t, func() error {
		if !bytes.Equal(verifierBytes(t, vname), before) {
			return errString("the verifier is not back to what it was")
		}
		return nil
	})
	for k, val := range getSecret(t, ns, "app-credentials").Data {
		if !bytes.Equal(val, consumer[k]) {
			t.Errorf("consumer Secret key %s changed", k)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestNamespaceLabelsDecideWhichPoliciesApply(t *testing.T) {
	ctx := context.Background()
	ns := policyNamespace(t, "b")
	withPolicies(t,
		teamPolicy("b", authv1alpha1.TokenPolicySpec{}),
		teamPolicy("c", authv1alpha1.TokenPolicySpec{GrantTypes: []authv1alpha1.GrantType{authv1alpha1.GrantPassword}}))
	oc := newOC(ns, "app")
	create(t, oc)
	waitReason(t, oc, authv1alpha1.ReasonIssued)

	// Moving the namespace to team c, whose policy allows no client_credentials.
	nsObj := &corev1.Namespace{}
	if err := k8s.Get(ctx, types.NamespacedName{Name: ns}, nsObj); err != nil {
		t.Fatal(err)
	}
	nsObj.Labels[labelPolicyTest] = "c"
	if err := k8s.Update(ctx, nsObj); err != nil {
		t.Fatal(err)
	}
	waitReason(t, oc, authv1alpha1.ReasonPolicyDenied)
	if msg := readyMessage(oc); !strings.Contains(msg, `team-c refuses spec.grantTypes "client_credentials" (rule grantTypes)`) {
		t.Errorf("Ready message %q", msg)
	}
	// A namespace no policy selects at all.
	nsObj.Labels[labelPolicyTest] = "nobody"
	if err := k8s.Update(ctx, nsObj); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() error {
		oc = getOC(t, ns, "app")
		if msg := readyMessage(oc); !strings.HasPrefix(msg, `namespace "`+ns+`" is selected by no TokenPolicy`) {
			return errString("Ready message " + msg)
		}
		return nil
	})
}

// TestUsernameSquattedBeforePoliciesGoesToTheAllowedNamespace: a tenant
// claimed admin@company.com before any policy existed. Once policies give
// that username's domain to the platform namespace only, the squatter is
// denied and gives the claim up, and the platform's User gets the username.
// Relaxing the squatter's policy later does not give it back: the platform
// claimed it first now.
func TestUsernameSquattedBeforePoliciesGoesToTheAllowedNamespace(t *testing.T) {
	ctx := context.Background()
	squatterNS := policyNamespace(t, "squatter")
	platformNS := policyNamespace(t, "platform")
	username := "admin-" + squatterNS + "@company.com"

	squatter := newUser(squatterNS, "admin", username)
	create(t, squatter)
	waitReason(t, squatter, authv1alpha1.ReasonIssued)

	withPolicies(t,
		teamPolicy("squatter", authv1alpha1.TokenPolicySpec{Usernames: &authv1alpha1.UsernameBounds{Suffixes: []string{"@squatter.example.com"}}}),
		teamPolicy("platform", authv1alpha1.TokenPolicySpec{Usernames: &authv1alpha1.UsernameBounds{Suffixes: []string{"@company.com"}}}))
	waitReason(t, squatter, authv1alpha1.ReasonPolicyDenied)

	platform := newUser(platformNS, "admin", username)
	create(t, platform)
	waitReason(t, platform, authv1alpha1.ReasonIssued)
	if v, err := userVerifier(t, platform); err != nil || v.PolicyDenied {
		t.Fatalf("the platform's User is not served: %v %+v", err, v)
	}
	if v, err := userVerifier(t, squatter); err != nil || !v.PolicyDenied {
		t.Fatalf("the squatter's verifier is not marked policyDenied: %v", err)
	}

	// The squatter's namespace is allowed the domain after all: first claim wins.
	p := &authv1alpha1.TokenPolicy{}
	if err := k8s.Get(ctx, types.NamespacedName{Name: "team-squatter"}, p); err != nil {
		t.Fatal(err)
	}
	p.Spec.Usernames.Suffixes = append(p.Spec.Usernames.Suffixes, "@company.com")
	if err := k8s.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitReason(t, squatter, authv1alpha1.ReasonConflict)
	waitReason(t, platform, authv1alpha1.ReasonIssued)
}

func TestDeniedFromTheStartIssuesAndClaimsNothing(t *testing.T) {
	ns := policyNamespace(t, "d")
	withPolicies(t, teamPolicy("d", authv1alpha1.TokenPolicySpec{NumericIDs: &authv1alpha1.NumericIDRange{Min: 100, Max: 199}}))
	oc := newOC(ns, "app", withSession(4242))
	create(t, oc)
	waitReason(t, oc, authv1alpha1.ReasonPolicyDenied)
	if msg := readyMessage(oc); !strings.Contains(msg, "spec.numericID 4242 outside 100-199 (rule numericIDs); nothing is issued") {
		t.Errorf("Ready message %q", msg)
	}
	mustNotExist(t, types.NamespacedName{Namespace: ns, Name: "app-credentials"})
	mustNotExist(t, types.NamespacedName{Namespace: serverNamespace, Name: credstore.ClientVerifierName(ns, "app")})
	mustNotExist(t, types.NamespacedName{Namespace: serverNamespace, Name: claimRecordName(claimKindClient, claimNumericID(4242))})
}

// TestAForeignAudienceIsDeniedWithoutAdmission is issue 32's attack where no
// admission policy runs (envtest has none): a client within the policy's
// scopes that names another team's API as its audience is denied by the
// controller, and one without audiences (the issuer's) is issued.
func TestAForeignAudienceIsDeniedWithoutAdmission(t *testing.T) {
	ns := policyNamespace(t, "shop")
	withPolicies(t, teamPolicy("shop", authv1alpha1.TokenPolicySpec{
		Scopes:    &authv1alpha1.ScopeBounds{Names: []string{"read"}},
		Audiences: &authv1alpha1.AudienceBounds{Prefixes: []string{"https://{namespace}.example.com/"}},
	}))
	own := newOC(ns, "own", func(oc *authv1alpha1.OAuthClient) {
		oc.Spec.Scopes, oc.Spec.Audiences = []string{"read"}, []string{"https://" + ns + ".example.com/cart"}
	})
	issuers := newOC(ns, "issuers", func(oc *authv1alpha1.OAuthClient) { oc.Spec.Scopes = []string{"read"} })
	foreign := newOC(ns, "foreign", func(oc *authv1alpha1.OAuthClient) {
		oc.Spec.Scopes, oc.Spec.Audiences = []string{"read"}, []string{"https://payments.internal"}
	})
	for _, oc := range []*authv1alpha1.OAuthClient{own, issuers, foreign} {
		create(t, oc)
	}
	waitReason(t, own, authv1alpha1.ReasonIssued)
	waitReason(t, issuers, authv1alpha1.ReasonIssued)
	waitReason(t, foreign, authv1alpha1.ReasonPolicyDenied)
	want := `team-shop refuses spec.audiences "https://payments.internal" (rule audiences); nothing is issued`
	if msg := readyMessage(foreign); !strings.Contains(msg, want) {
		t.Errorf("Ready message %q, want it to contain %q", msg, want)
	}
	mustNotExist(t, types.NamespacedName{Namespace: ns, Name: "foreign-credentials"})
	mustNotExist(t, types.NamespacedName{Namespace: serverNamespace, Name: credstore.ClientVerifierName(ns, "foreign")})
}

func TestTheSnapshotFollowsTheTokenPolicies(t *testing.T) {
	ctx := context.Background()
	snap := func() *authv1alpha1.TokenPolicySnapshot {
		s := &authv1alpha1.TokenPolicySnapshot{}
		if err := k8s.Get(ctx, types.NamespacedName{Name: tenancy.DefaultSnapshotName}, s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	eventually(t, func() error {
		if n := len(snap().Spec.Policies); n != 0 {
			return errString("the snapshot lists policies that do not exist")
		}
		return nil
	})
	withPolicies(t, teamPolicy("e", authv1alpha1.TokenPolicySpec{TokenFormats: []authv1alpha1.TokenFormat{authv1alpha1.TokenFormatJWT}}))
	eventually(t, func() error {
		ps := snap().Spec.Policies
		if len(ps) != 2 || ps[0].Name != "others" || ps[1].Name != "team-e" || len(ps[1].TokenFormats) != 1 {
			return errString("snapshot does not list others and team-e")
		}
		return nil
	})
	// Someone else's edit is undone.
	s := snap()
	s.Spec.Policies = nil
	if err := k8s.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() error {
		if len(snap().Spec.Policies) != 2 {
			return errString("an edit of the snapshot was not undone")
		}
		return nil
	})
}
