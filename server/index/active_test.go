package index

import (
	"errors"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/tokens"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestCheck(t *testing.T) {
	snb := now.Add(-time.Hour)
	clients := []credstore.ClientVerifier{
		{ClientID: "mobile", GrantTypes: []string{"password"}, Secrets: []credstore.SecretDigests{{}}},
		{ClientID: "svc", GrantTypes: []string{"client_credentials"}, Secrets: []credstore.SecretDigests{{}}},
	}
	users := []credstore.UserVerifier{
		{Username: "alice", CredentialGeneration: 2, DeauthorizedDevices: []string{"stolen phone"}},
		{Username: "bob", Disabled: true, CredentialGeneration: 1},
		{Username: "carol", CredentialGeneration: 1, SessionsNotBefore: &snb},
		{Username: "dave", CredentialGeneration: 1, Clients: []string{"svc"}},
	}
	revs := []credstore.Revocation{{ID: "revoked-jti", ExpiresAt: now.Add(time.Hour)}, {ID: "revoked-sid", ExpiresAt: now.Add(time.Hour)}}
	s, err := NewSnapshot(clients, users, nil, revs)
	if err != nil {
		t.Fatal(err)
	}
	user := func(name string, gen int64, mod func(*tokens.Claims)) *tokens.Claims {
		c := &tokens.Claims{Kind: tokens.Access, Subject: name, ClientID: "mobile", ID: "j", SessionID: "s",
			IssuedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour), Generation: gen, Device: "laptop"}
		if mod != nil {
			mod(c)
		}
		return c
	}
	client := &tokens.Claims{Kind: tokens.Access, Subject: "svc", ClientID: "svc", ID: "j2", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	cases := []struct {
		name   string
		claims *tokens.Claims
		want   error
	}{
		{"a client token of an existing client is active", client, nil},
		{"a user token matching the user's state is active", user("alice", 2, nil), nil},
		{"a token issued after sessionsNotBefore is active", user("carol", 1, func(c *tokens.Claims) { c.IssuedAt = snb }), nil},
		{"a token whose jti was revoked is not", user("alice", 2, func(c *tokens.Claims) { c.ID = "revoked-jti" }), ErrRevoked},
		{"a token whose session was revoked is not", user("alice", 2, func(c *tokens.Claims) { c.SessionID = "revoked-sid" }), ErrRevoked},
		{"a token of a deleted client is not", user("alice", 2, func(c *tokens.Claims) { c.ClientID = "gone" }), ErrUnknownClient},
		{"a token of a deleted user is not", user("zed", 0, nil), ErrUnknownUser},
		{"a token of a disabled user is not", user("bob", 1, nil), ErrUserDisabled},
		{"a token from before a password change is not", user("alice", 1, nil), ErrCredentialsChanged},
		{"a token issued before sessionsNotBefore is not", user("carol", 1, func(c *tokens.Claims) { c.IssuedAt = snb.Add(-time.Second) }), ErrSessionEnded},
		{"a token of a deauthorized device is not", user("alice", 2, func(c *tokens.Claims) { c.Device = "stolen phone" }), ErrDeviceDeauthorized},
		{"a token of a client the user no longer allows is not", user("dave", 1, nil), ErrClientNotAllowed},
		{"an expired token is not", user("alice", 2, func(c *tokens.Claims) { c.ExpiresAt = now.Add(-time.Minute) }), ErrExpired},
		{"nil claims are not", nil, ErrUnknownClient},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Check(tc.claims, now)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Check = %v, want %v", err, tc.want)
			}
			if s.Active(tc.claims, now) != (tc.want == nil) {
				t.Fatal("Active disagrees with Check")
			}
		})
	}
}

func TestEmptySnapshot(t *testing.T) {
	ix := New(logrDiscard())
	s := ix.Snapshot()
	if s == nil || s.Keyring() != nil || s.Client("x") != nil || s.User("x") != nil || s.Revoked("") || ix.Ready() {
		t.Fatal("the snapshot before sync is not empty and unready")
	}
}

func TestLocalRevocationSurvivesRebuilds(t *testing.T) {
	ix := New(logrDiscard())
	ix.Revoke("jti-1", time.Now().Add(time.Hour))
	if !ix.Snapshot().Revoked("jti-1") {
		t.Fatal("a local revocation is not served at once")
	}
	ix.rebuild()
	if !ix.Snapshot().Revoked("jti-1") {
		t.Fatal("a rebuild lost a local revocation")
	}
	ix.Revoke("jti-2", time.Now().Add(-time.Hour))
	ix.rebuild()
	if ix.Snapshot().Revoked("jti-2") {
		t.Fatal("an expired local revocation was kept")
	}
}

// Issue 15, finding 2: tokens are bound to the OAuthClient and User objects,
// not only to their client id and username; and to the scopes the client and
// user may have now.
func TestCheckBindsTokensToTheObjectAndItsScopes(t *testing.T) {
	created := now.Add(-24 * time.Hour)
	at := func(t time.Time) *time.Time { return &t }
	clients := []credstore.ClientVerifier{
		{ClientID: "svc", ObjectRef: credstore.ObjectRef{UID: "uid-svc-2", Created: &created}, Scopes: []string{"read"}, Secrets: []credstore.SecretDigests{{}}},
		{ClientID: "mobile", ObjectRef: credstore.ObjectRef{UID: "uid-mobile", Created: at(created.Add(-time.Hour))}, Scopes: []string{"read", "write"}, Secrets: []credstore.SecretDigests{{}}},
		// Written by a controller that predates bindings: no uid, no creation time.
		{ClientID: "legacy", Scopes: []string{"read"}, Secrets: []credstore.SecretDigests{{}}},
	}
	users := []credstore.UserVerifier{
		{Username: "carol", ObjectRef: credstore.ObjectRef{UID: "uid-carol-2", Created: &created}, Scopes: []string{"read", "write"}, CredentialGeneration: 1},
		{Username: "old", CredentialGeneration: 1, Scopes: []string{"read"}},
	}
	s, err := NewSnapshot(clients, users, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	bind := func(clientUID, userUID string) string { return tokens.Binding(clientUID, userUID, userUID != "") }
	client := func(id, binding string, iat time.Time, scope ...string) *tokens.Claims {
		return &tokens.Claims{Kind: tokens.Access, Subject: id, ClientID: id, ID: "j", Scope: scope, IssuedAt: iat, ExpiresAt: now.Add(time.Hour), Binding: binding}
	}
	user := func(name, binding string, iat time.Time, kind tokens.Kind, scope ...string) *tokens.Claims {
		return &tokens.Claims{Kind: kind, Subject: name, ClientID: "mobile", ID: "j", SessionID: "s", Scope: scope, Generation: 1,
			IssuedAt: iat, ExpiresAt: now.Add(time.Hour), Binding: binding}
	}
	recent := now.Add(-time.Minute)
	cases := []struct {
		name   string
		claims *tokens.Claims
		want   error
	}{
		{"a client token bound to the current object is active", client("svc", bind("uid-svc-2", ""), recent, "read"), nil},
		{"a client token bound to a deleted object of the same client id is not", client("svc", bind("uid-svc-1", ""), recent, "read"), ErrOtherObject},
		{"a user's client token cannot pass as the client's own", client("svc", bind("uid-svc-2", "uid-carol-2"), recent, "read"), ErrOtherObject},
		{"a client token with a scope the client no longer has is not", client("svc", bind("uid-svc-2", ""), recent, "read", "admin"), ErrScopeWithdrawn},
		{"a user token bound to the current objects is active", user("carol", bind("uid-mobile", "uid-carol-2"), recent, tokens.Access, "read"), nil},
		{"a user token bound to a deleted User of the same username is not", user("carol", bind("uid-mobile", "uid-carol-1"), recent, tokens.Access, "read"), ErrOtherObject},
		{"a refresh token bound to a deleted User of the same username is not", user("carol", bind("uid-mobile", "uid-carol-1"), recent, tokens.Refresh, "read"), ErrOtherObject},
		{"a user token bound to a deleted client of the same client id is not", user("carol", bind("uid-mobile-old", "uid-carol-2"), recent, tokens.Access, "read"), ErrOtherObject},
		{"a user access token with a scope the user no longer has is not", user("carol", bind("uid-mobile", "uid-carol-2"), recent, tokens.Access, "read", "admin"), ErrScopeWithdrawn},
		{"a refresh token with a withdrawn scope stays usable (the refresh grant narrows)", user("carol", bind("uid-mobile", "uid-carol-2"), recent, tokens.Refresh, "read", "admin"), nil},
		// Tokens minted before bindings existed carry none: accepted only if issued after the object was created.
		{"an unbound client token issued after the client was created is active (upgrade)", client("svc", "", recent, "read"), nil},
		{"an unbound client token issued before the client was created is not", client("svc", "", created.Add(-time.Second), "read"), ErrOtherObject},
		// Both times have one-second resolution, and a client's first token often comes in the second it was
		// created (seen on the real node); for a deleted object's token to pass, the object would have to be
		// deleted and re-created within the second that token was issued in.
		{"an unbound client token issued in the second the client was created is active", client("svc", "", created, "read"), nil},
		{"an unbound user token issued after both objects were created is active (upgrade)", user("carol", "", recent, tokens.Refresh, "read"), nil},
		{"an unbound user token issued before the User was created is not", user("carol", "", created.Add(-time.Minute), tokens.Refresh, "read"), ErrOtherObject},
		{"a token of a client whose verifier predates bindings is active", client("legacy", "", recent, "read"), nil},
		{"a bound token cannot match a verifier without a uid", client("legacy", bind("uid-legacy", ""), recent, "read"), ErrOtherObject},
		{"a user token of a user whose verifier predates bindings is active", user("old", "", recent, tokens.Access, "read"), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Check(tc.claims, now); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Check = %v, want %v", err, tc.want)
			}
		})
	}
	if got := Binding(s.Client("svc"), nil); got != bind("uid-svc-2", "") || len(got) != 22 {
		t.Fatalf("Binding = %q", got)
	}
	if Binding(s.Client("legacy"), nil) != "" || Binding(s.Client("mobile"), s.User("old")) != "" {
		t.Fatal("a verifier without a uid must give no binding")
	}
}
