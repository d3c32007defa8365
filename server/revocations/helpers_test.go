package revocations

import (
	"encoding/base64"
	"net/url"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/internal/keyset"
)

// Fixtures shared with server/resource's tests, which live in another package.

const issuer = "https://auth.example.test"

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func digest(s string) credstore.Digest { return credstore.DigestOf(credstore.PurposeClientSecret, s) }

func clientDocs() []credstore.ClientVerifier {
	mk := func(id string, grants ...string) credstore.ClientVerifier {
		return credstore.ClientVerifier{ClientID: id, GrantTypes: grants, Scopes: []string{"read", "write"},
			Secrets: []credstore.SecretDigests{{ClientSecret: digest(id + "-secret")}}}
	}
	return []credstore.ClientVerifier{
		mk("svc", "client_credentials"),
		mk("mobile", "password", "refresh_token"),
		mk("rs", "client_credentials"), // a resource server that only introspects
		mk("game", "session"),
	}
}

func userDocs(disabled bool) []credstore.UserVerifier {
	return []credstore.UserVerifier{
		{Username: "alice", CredentialGeneration: 1, Scopes: []string{"read", "write"}},
		{Username: "bob", CredentialGeneration: 1, Disabled: disabled},
	}
}

func newKeys(t testing.TB) *keyset.Set {
	t.Helper()
	s := &keyset.Set{}
	if _, err := s.Reconcile(now.Add(-time.Hour), 0, 0); err != nil {
		t.Fatal(err)
	}
	return s
}

func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}
