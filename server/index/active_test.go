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
