package issue

import (
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/index"
	"github.com/tokensmith/tokensmith/server/tokens"
)

func TestClaims(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const iss = "https://auth.example.test"
	c := &index.Client{ClientVerifier: credstore.ClientVerifier{ClientID: "svc", ObjectRef: credstore.ObjectRef{UID: "c-uid"}, Audiences: []string{"api"}}}
	u := &index.User{UserVerifier: credstore.UserVerifier{Username: "alice", ObjectRef: credstore.ObjectRef{UID: "u-uid"}, CredentialGeneration: 3}}

	own := Claims(iss, now, Token{Kind: tokens.Access, Client: c, Scope: []string{"read"}, TTL: time.Hour})
	if own.Subject != "svc" || own.ClientID != "svc" || own.SessionID != "" || own.Generation != 0 || own.Issuer != iss ||
		!own.IssuedAt.Equal(now) || !own.ExpiresAt.Equal(now.Add(time.Hour)) || own.ID == "" ||
		own.Binding != index.Binding(c, nil) || len(own.Audience) != 1 || own.Audience[0] != "api" {
		t.Fatalf("a client's own token: %+v", own)
	}
	login := Claims(iss, now, Token{Kind: tokens.Access, Client: c, User: u, Device: "phone", TTL: time.Minute})
	if login.Subject != "alice" || login.SessionID == "" || login.Generation != 3 || login.Device != "phone" ||
		login.Binding != index.Binding(c, u) || login.SubjectType() != tokens.SubjectUser {
		t.Fatalf("a login's token: %+v", login)
	}
	again := Claims(iss, now, Token{Kind: tokens.Refresh, Client: c, User: u, SessionID: login.SessionID})
	if again.SessionID != login.SessionID || again.ID == login.ID {
		t.Fatalf("a refreshed token keeps the session and gets a new id: %+v", again)
	}
}

func TestClientFormat(t *testing.T) {
	opaque := &index.Client{ClientVerifier: credstore.ClientVerifier{TokenFormat: credstore.TokenFormatOpaque}}
	for _, tc := range []struct {
		c    *index.Client
		want Format
	}{
		{opaque, Format{Encoding: tokens.FormatOpaque, Prefix: tokens.PrefixClientToken}},
		{&index.Client{ClientVerifier: credstore.ClientVerifier{TokenFormat: credstore.TokenFormatJWT}}, ES256},
		{&index.Client{}, ES256}, // verifiers written before tokenFormat existed
	} {
		if got := ClientFormat(tc.c, tokens.PrefixClientToken); got != tc.want {
			t.Errorf("ClientFormat(%q) = %+v, want %+v", tc.c.TokenFormat, got, tc.want)
		}
	}
}
