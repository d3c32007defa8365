package revocations

import (
	"github.com/tokensmith/tokensmith/internal/credstore"
	st "github.com/tokensmith/tokensmith/server/internal/servertest"
)

// Fixtures shared with server/resource's tests, which live in another package.

const issuer = "https://auth.example.test"

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

func form(kv ...string) string { return st.Form(kv...) }

func basic(id, secret string) string { return st.Basic(id, secret) }
