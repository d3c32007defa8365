package tenancy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
)

// Defaults the token server applies to a client that leaves a TTL unset; a
// policy's maximum is checked against them (server/oauth2, server/tokens).
const (
	DefaultAccessTTL         = time.Hour
	DefaultPasswordAccessTTL = 8784 * time.Hour
	DefaultRefreshTTL        = 8784 * time.Hour
)

// Policies are every TokenPolicy, as the controller last read them.
type Policies struct {
	// Items, sorted by name.
	Items []authv1alpha1.NamedTokenPolicy
	// DenyUnlessAllowed enforces even when Items is empty ("tenancy.denyUnlessAllowed").
	DenyUnlessAllowed bool
}

// Enforced reports whether objects are judged at all.
func (p Policies) Enforced() bool { return p.DenyUnlessAllowed || len(p.Items) > 0 }

// Namespace is what a policy selects on.
type Namespace struct {
	Name   string
	Labels map[string]string
}

// selecting returns the policies whose namespaceSelector matches ns. A
// selector the API server would not have admitted selects nothing.
func (p Policies) selecting(ns Namespace) []authv1alpha1.NamedTokenPolicy {
	var out []authv1alpha1.NamedTokenPolicy
	for _, tp := range p.Items {
		sel, err := metav1.LabelSelectorAsSelector(&tp.NamespaceSelector)
		if err != nil {
			continue
		}
		if sel.Matches(labels.Set(ns.Labels)) {
			out = append(out, tp)
		}
	}
	return out
}

// refusal is one rule of one policy that refuses the object.
type refusal struct{ rule, what string }

// judge applies the union: nil when allowed, else the message naming, per
// selecting policy, every rule that refuses and what it refuses.
func (p Policies) judge(ns Namespace, kind string, check func(tp *authv1alpha1.TokenPolicySpec) []refusal) error {
	if !p.Enforced() {
		return nil
	}
	sel := p.selecting(ns)
	if len(sel) == 0 {
		return &DeniedError{Message: fmt.Sprintf("namespace %q is selected by no TokenPolicy", ns.Name)}
	}
	parts := make([]string, 0, len(sel))
	for i := range sel {
		rs := check(&sel[i].TokenPolicySpec)
		if len(rs) == 0 {
			return nil
		}
		texts := make([]string, len(rs))
		for j, r := range rs {
			texts[j] = r.what + " (rule " + r.rule + ")"
		}
		parts = append(parts, sel[i].Name+" refuses "+strings.Join(texts, ", "))
	}
	return &DeniedError{Message: fmt.Sprintf("no TokenPolicy selecting namespace %q allows this %s: %s", ns.Name, kind, strings.Join(parts, "; "))}
}

// DeniedError says why no policy allows an object. Its message names only
// spec values and policy names, never a credential.
type DeniedError struct{ Message string }

func (e *DeniedError) Error() string { return e.Message }

// CheckClient returns nil when the OAuthClient spec in namespace ns is allowed.
func (p Policies) CheckClient(ns Namespace, spec *authv1alpha1.OAuthClientSpec) error {
	grants := spec.GrantTypes
	if len(grants) == 0 {
		grants = []authv1alpha1.GrantType{authv1alpha1.GrantClientCredentials}
	}
	format := spec.TokenFormat
	if format == "" {
		format = authv1alpha1.TokenFormatJWT
	}
	password := slices.Contains(grants, authv1alpha1.GrantPassword)
	accessTTL, accessText := DefaultAccessTTL, "unset (1h)"
	if password {
		accessTTL, accessText = DefaultPasswordAccessTTL, "unset (8784h with the password grant)"
	}
	if spec.AccessTokenTTL != nil {
		accessTTL, accessText = spec.AccessTokenTTL.Duration, spec.AccessTokenTTL.Duration.String()
	}
	refreshTTL, refreshText := DefaultRefreshTTL, "unset (8784h)"
	if spec.RefreshTokenTTL != nil {
		refreshTTL, refreshText = spec.RefreshTokenTTL.Duration, spec.RefreshTokenTTL.Duration.String()
	}
	return p.judge(ns, "OAuthClient", func(tp *authv1alpha1.TokenPolicySpec) []refusal {
		var rs []refusal
		if s, ok := badScope(tp, ns.Name, spec.Scopes); ok {
			rs = append(rs, refusal{"scopes", fmt.Sprintf("spec.scopes %q", s)})
		}
		if b := tp.Audiences; b != nil {
			if a, ok := firstOutside(b.Names, b.Prefixes, ns.Name, spec.Audiences); ok {
				// Quoted as admission's CEL quotes it, which %q would not for a quote or a backslash.
				rs = append(rs, refusal{"audiences", `spec.audiences "` + a + `"`})
			}
		}
		if len(tp.GrantTypes) > 0 {
			for _, g := range grants {
				if !slices.Contains(tp.GrantTypes, g) {
					rs = append(rs, refusal{"grantTypes", fmt.Sprintf("spec.grantTypes %q", g)})
					break
				}
			}
		}
		if len(tp.TokenFormats) > 0 && !slices.Contains(tp.TokenFormats, format) {
			rs = append(rs, refusal{"tokenFormats", fmt.Sprintf("spec.tokenFormat %q", format)})
		}
		if tp.MaxAccessTokenTTL != nil && accessTTL > tp.MaxAccessTokenTTL.Duration {
			rs = append(rs, refusal{"maxAccessTokenTTL", "spec.accessTokenTTL " + accessText + " over " + tp.MaxAccessTokenTTL.Duration.String()})
		}
		if tp.MaxRefreshTokenTTL != nil && slices.Contains(grants, authv1alpha1.GrantRefreshToken) && refreshTTL > tp.MaxRefreshTokenTTL.Duration {
			rs = append(rs, refusal{"maxRefreshTokenTTL", "spec.refreshTokenTTL " + refreshText + " over " + tp.MaxRefreshTokenTTL.Duration.String()})
		}
		if r := tp.NumericIDs; r != nil && spec.NumericID != nil && (*spec.NumericID < r.Min || *spec.NumericID > r.Max) {
			rs = append(rs, refusal{"numericIDs", fmt.Sprintf("spec.numericID %d outside %d-%d", *spec.NumericID, r.Min, r.Max)})
		}
		if sa := spec.ServiceAccountName; sa != "" && tp.AllowServiceAccountBinding != nil && !*tp.AllowServiceAccountBinding {
			rs = append(rs, refusal{"allowServiceAccountBinding", fmt.Sprintf("spec.serviceAccountName %q", sa)})
		}
		return rs
	})
}

// CheckUser returns nil when the User spec in namespace ns is allowed.
func (p Policies) CheckUser(ns Namespace, spec *authv1alpha1.UserSpec) error {
	return p.judge(ns, "User", func(tp *authv1alpha1.TokenPolicySpec) []refusal {
		var rs []refusal
		if s, ok := badScope(tp, ns.Name, spec.Scopes); ok {
			rs = append(rs, refusal{"scopes", fmt.Sprintf("spec.scopes %q", s)})
		}
		if !UsernameAllowed(tp, ns.Name, spec.Username) {
			rs = append(rs, refusal{"usernames", fmt.Sprintf("spec.username %q", spec.Username)})
		}
		return rs
	})
}

// UsernameAllowed reports whether policy tp lets namespace ns hold username.
func UsernameAllowed(tp *authv1alpha1.TokenPolicySpec, ns, username string) bool {
	u := tp.Usernames
	if u == nil {
		return true
	}
	for _, s := range u.Suffixes {
		if strings.HasSuffix(username, expand(s, ns)) {
			return true
		}
	}
	for _, s := range u.Prefixes {
		if strings.HasPrefix(username, expand(s, ns)) {
			return true
		}
	}
	return false
}

// badScope returns the first scope policy tp does not allow in namespace ns.
func badScope(tp *authv1alpha1.TokenPolicySpec, ns string, scopes []string) (string, bool) {
	if tp.Scopes == nil {
		return "", false
	}
	return firstOutside(tp.Scopes.Names, tp.Scopes.Prefixes, ns, scopes)
}

// firstOutside returns the first of values that equals none of names and
// starts with none of prefixes, "{namespace}" in both standing for ns.
func firstOutside(names, prefixes []string, ns string, values []string) (string, bool) {
	for _, v := range values {
		if !slices.ContainsFunc(names, func(n string) bool { return expand(n, ns) == v }) &&
			!slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(v, expand(p, ns)) }) {
			return v, true
		}
	}
	return "", false
}

func expand(s, ns string) string { return strings.ReplaceAll(s, authv1alpha1.NamespacePlaceholder, ns) }

// UsernameAllowedIn reports whether namespace ns may hold username at all:
// some policy selecting it allows the username (or nothing is enforced). A
// User refused for anything else keeps its username's claim; one refused for
// its username gives it up, so that a username squatted before the policies
// existed goes to the namespace allowed to hold it.
func (p Policies) UsernameAllowedIn(ns Namespace, username string) bool {
	if !p.Enforced() {
		return true
	}
	for _, tp := range p.selecting(ns) {
		if UsernameAllowed(&tp.TokenPolicySpec, ns.Name, username) {
			return true
		}
	}
	return false
}

// NumericIDAllowedIn is UsernameAllowedIn for an OAuthClient's numericID.
func (p Policies) NumericIDAllowedIn(ns Namespace, id int64) bool {
	if !p.Enforced() {
		return true
	}
	for _, tp := range p.selecting(ns) {
		if r := tp.NumericIDs; r == nil || id >= r.Min && id <= r.Max {
			return true
		}
	}
	return false
}
