package tenancy

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
)

// The rules against the API server's own admission are in
// charts/tokensmith/tenancy_test.go; these are the edges that need no server.
func TestPolicies(t *testing.T) {
	ns := Namespace{Name: "team-a", Labels: map[string]string{"team": "a"}}
	ttl := func(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }
	policy := func(name string, spec authv1alpha1.TokenPolicySpec) authv1alpha1.TokenPolicy {
		return authv1alpha1.TokenPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	}
	teamA := metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}
	cases := []struct {
		name     string
		policies []authv1alpha1.TokenPolicy
		deny     bool
		spec     authv1alpha1.OAuthClientSpec
		want     string
	}{
		{"no policy allows everything", nil, false, authv1alpha1.OAuthClientSpec{Scopes: []string{"admin"}}, ""},
		{"deny unless allowed denies with no policy", nil, true, authv1alpha1.OAuthClientSpec{},
			`namespace "team-a" is selected by no TokenPolicy`},
		{"a policy for another namespace denies this one", []authv1alpha1.TokenPolicy{
			policy("b", authv1alpha1.TokenPolicySpec{NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{"team": "b"}}})}, false,
			authv1alpha1.OAuthClientSpec{}, `namespace "team-a" is selected by no TokenPolicy`},
		{"an empty policy selecting the namespace allows anything", []authv1alpha1.TokenPolicy{policy("a", authv1alpha1.TokenPolicySpec{NamespaceSelector: teamA})}, false,
			authv1alpha1.OAuthClientSpec{Scopes: []string{"admin"}, GrantTypes: []authv1alpha1.GrantType{authv1alpha1.GrantPassword}}, ""},
		{"the namespace placeholder expands", []authv1alpha1.TokenPolicy{policy("a", authv1alpha1.TokenPolicySpec{NamespaceSelector: teamA,
			Scopes: &authv1alpha1.ScopeBounds{Prefixes: []string{"{namespace}:"}}})}, false,
			authv1alpha1.OAuthClientSpec{Scopes: []string{"team-a:x", "team-b:x"}},
			`no TokenPolicy selecting namespace "team-a" allows this OAuthClient: a refuses spec.scopes "team-b:x" (rule scopes)`},
		{"a client without audiences (the issuer's) is allowed by a policy that allows no audience", []authv1alpha1.TokenPolicy{policy("a", authv1alpha1.TokenPolicySpec{NamespaceSelector: teamA,
			Audiences: &authv1alpha1.AudienceBounds{}})}, false, authv1alpha1.OAuthClientSpec{}, ""},
		{"audiences are bounded by names and prefixes with the placeholder", []authv1alpha1.TokenPolicy{policy("a", authv1alpha1.TokenPolicySpec{NamespaceSelector: teamA,
			Audiences: &authv1alpha1.AudienceBounds{Names: []string{"billing"}, Prefixes: []string{"https://{namespace}.example.com/"}}})}, false,
			authv1alpha1.OAuthClientSpec{Audiences: []string{"billing", "https://team-a.example.com/orders", "https://team-b.example.com/", `we"ird`}},
			`no TokenPolicy selecting namespace "team-a" allows this OAuthClient: a refuses spec.audiences "https://team-b.example.com/" (rule audiences)`},
		{"an unset access TTL counts as 1h without the password grant", []authv1alpha1.TokenPolicy{policy("a", authv1alpha1.TokenPolicySpec{NamespaceSelector: teamA,
			MaxAccessTokenTTL: ttl(time.Hour)})}, false, authv1alpha1.OAuthClientSpec{}, ""},
		{"a refresh TTL matters only with the refresh_token grant", []authv1alpha1.TokenPolicy{policy("a", authv1alpha1.TokenPolicySpec{NamespaceSelector: teamA,
			MaxRefreshTokenTTL: ttl(time.Hour)})}, false, authv1alpha1.OAuthClientSpec{RefreshTokenTTL: ttl(2 * time.Hour)}, ""},
		{"every refusing rule of every policy is named", []authv1alpha1.TokenPolicy{
			policy("z", authv1alpha1.TokenPolicySpec{NamespaceSelector: teamA, TokenFormats: []authv1alpha1.TokenFormat{authv1alpha1.TokenFormatOpaque}}),
			policy("a", authv1alpha1.TokenPolicySpec{NamespaceSelector: metav1.LabelSelector{}, GrantTypes: []authv1alpha1.GrantType{authv1alpha1.GrantSession},
				NumericIDs: &authv1alpha1.NumericIDRange{Min: 1, Max: 2}})}, false,
			authv1alpha1.OAuthClientSpec{NumericID: ptr(int64(3))},
			`no TokenPolicy selecting namespace "team-a" allows this OAuthClient: a refuses spec.grantTypes "client_credentials" (rule grantTypes), spec.numericID 3 outside 1-2 (rule numericIDs); z refuses spec.tokenFormat "jwt" (rule tokenFormats)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := FromTokenPolicies(tc.policies, tc.deny).CheckClient(ns, &tc.spec)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
