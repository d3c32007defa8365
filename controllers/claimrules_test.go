package controllers

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/credstore"
)

// TestClaimOrder: the claims an OAuthClient asks for, in the order acquire
// tries them, so a conflict names the client id before the numericID.
// (claims_test.go proves the rules against the API server.)
func TestClaimOrder(t *testing.T) {
	n := int64(42)
	for _, tc := range []struct {
		name      string
		spec      authv1alpha1.OAuthClientSpec
		status    string
		clientID  string
		wantKeys  []string
		wantWhat  []string
		wantIndex []string // oauthClientClaims: what the field index holds
	}{
		{name: "nothing known yet", wantKeys: nil, wantIndex: nil},
		{name: "numericID only", spec: authv1alpha1.OAuthClientSpec{NumericID: &n},
			wantKeys: []string{"numericID=42"}, wantWhat: []string{"numericID 42"}, wantIndex: []string{"numericID=42"}},
		{name: "client id first, then numericID", spec: authv1alpha1.OAuthClientSpec{ClientID: "abc", NumericID: &n}, clientID: "abc",
			wantKeys: []string{"clientID=abc", "numericID=42"}, wantWhat: []string{`client id "abc"`, "numericID 42"},
			wantIndex: []string{"clientID=abc", "numericID=42"}},
		{name: "a generated id kept in status is indexed", status: "gen", clientID: "gen",
			wantKeys: []string{"clientID=gen"}, wantWhat: []string{`client id "gen"`}, wantIndex: []string{"clientID=gen"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oc := &authv1alpha1.OAuthClient{Spec: tc.spec}
			oc.Status.ClientID = tc.status
			var keys, what []string
			for _, c := range clientClaims(oc, tc.clientID) {
				keys, what = append(keys, c.key), append(what, c.what)
			}
			if !slices.Equal(keys, tc.wantKeys) || !slices.Equal(what, tc.wantWhat) {
				t.Fatalf("clientClaims = %q %q, want %q %q", keys, what, tc.wantKeys, tc.wantWhat)
			}
			if got := oauthClientClaims(oc); !slices.Equal(got, tc.wantIndex) {
				t.Fatalf("oauthClientClaims = %q, want %q", got, tc.wantIndex)
			}
			for _, k := range keys {
				if field, value := clientClaimKind.index(k); field != indexClaim || value != k {
					t.Fatalf("index(%q) = %s=%s", k, field, value)
				}
			}
		})
	}
}

func TestUserClaims(t *testing.T) {
	u := &authv1alpha1.User{Spec: authv1alpha1.UserSpec{Username: "bob"}}
	if c := userClaims(u); len(c) != 1 || c[0].key != "username=bob" || c[0].what != "username" {
		t.Fatalf("userClaims = %+v", c)
	}
	if field, value := userClaimKind.index("username=bob"); field != indexUsername || value != "bob" {
		t.Fatalf("index = %s=%s", field, value)
	}
	if keys := userClaimKind.keys(&authv1alpha1.User{}); keys != nil {
		t.Fatalf("a User without a username claims %q", keys)
	}
}

// TestClaimRecordNames: one valid Secret name per kind and identifier, for
// any identifier.
func TestClaimRecordNames(t *testing.T) {
	dns := regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	seen := map[string]string{}
	for _, kind := range []string{claimKindClient, claimKindUser} {
		for _, key := range []string{"clientID=a", "clientID=A", "username=" + strings.Repeat("é", 300), "numericID=-1"} {
			name := claimRecordName(kind, key)
			if len(name) > 253 || !dns.MatchString(name) {
				t.Fatalf("claimRecordName(%s, %q) = %q is not a Secret name", kind, key, name)
			}
			if prev, ok := seen[name]; ok {
				t.Fatalf("%q and %s/%q share record %s", prev, kind, key, name)
			}
			seen[name] = kind + "/" + key
		}
	}
}

// TestVerifierServes: a verifier written before claim records existed holds
// its identifiers (heldByVerifier); a broken document holds nothing.
func TestVerifierServes(t *testing.T) {
	client, _ := credstore.Encode(credstore.ClientVerifier{ClientID: "abc", NumericID: 42})
	user, _ := credstore.Encode(credstore.UserVerifier{Username: "bob"})
	for _, tc := range []struct {
		kind claimKind
		doc  []byte
		key  string
		want bool
	}{
		{clientClaimKind, client, "clientID=abc", true},
		{clientClaimKind, client, "numericID=42", true},
		{clientClaimKind, client, "numericID=0", false},
		{clientClaimKind, client, "clientID=other", false},
		{clientClaimKind, []byte("{"), "clientID=abc", false},
		{userClaimKind, user, "username=bob", true},
		{userClaimKind, user, "username=alice", false},
	} {
		if got := tc.kind.serves(tc.doc, tc.key); got != tc.want {
			t.Errorf("%s serves(%q) = %v, want %v", tc.kind.name, tc.key, got, tc.want)
		}
	}
}

// TestConflictMessageNamesNoHolder: the message is built from the claim's
// description alone, so it cannot name who holds it.
func TestConflictMessageNamesNoHolder(t *testing.T) {
	oc := &authv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: "holder-ns", Name: "holder"}}
	msg := conflictMessage(clientClaims(oc, "abc")[0].what)
	if strings.Contains(msg, "holder") || !strings.Contains(msg, `client id "abc"`) {
		t.Fatalf("conflict message %q", msg)
	}
}
