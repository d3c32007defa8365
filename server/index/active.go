package index

import (
	"errors"
	"slices"
	"time"

	"github.com/tokensmith/tokensmith/server/tokens"
)

// Reasons a verified token is no longer active. Callers answer all of them
// alike (introspection: {"active":false}); the reasons are for tests and logs.
var (
	ErrExpired            = errors.New("index: token expired")
	ErrRevoked            = errors.New("index: token or session revoked")
	ErrUnknownClient      = errors.New("index: client no longer exists")
	ErrUnknownUser        = errors.New("index: user no longer exists")
	ErrUserDisabled       = errors.New("index: user is disabled")
	ErrClientNotAllowed   = errors.New("index: user may no longer use this client")
	ErrCredentialsChanged = errors.New("index: user's credentials changed since the token was issued")
	ErrSessionEnded       = errors.New("index: session issued before the user's sessionsNotBefore")
	ErrDeviceDeauthorized = errors.New("index: device deauthorized")
	ErrOtherObject        = errors.New("index: token was issued for a deleted OAuthClient or User of the same name")
	ErrScopeWithdrawn     = errors.New("index: token carries a scope its client or user may no longer have")
)

// Binding is the value tokens of client c (and user u, nil for client
// tokens) carry to name the objects they were issued for (tokens.Binding).
func Binding(c *Client, u *User) string {
	if u == nil {
		if c.binding != "" {
			return c.binding
		}
		return tokens.Binding(c.UID, "", false) // a Client not built by the index
	}
	return tokens.Binding(c.UID, u.UID, true)
}

// boundTo reports whether c was issued for these very objects: its binding
// matches theirs, or, for a token minted before bindings existed (none in it),
// it was issued after each object was created. Objects whose verifier
// predates bindings (no uid) cannot be told apart and are trusted, as before.
func boundTo(c *tokens.Claims, client *Client, user *User) bool {
	if c.Binding != "" {
		return c.Binding == Binding(client, user)
	}
	// iat and creationTimestamp both have one-second resolution: a token issued
	// in the second its object was created is that object's (seen on the real
	// node: samples applied, Ready and their first tokens all within a second).
	if client.Created != nil && c.IssuedAt.Before(*client.Created) {
		return false
	}
	return user == nil || user.Created == nil || !c.IssuedAt.Before(*user.Created)
}

// subset reports whether every one of have is in allowed.
func subset(have, allowed []string) bool {
	for _, s := range have {
		if !slices.Contains(allowed, s) {
			return false
		}
	}
	return true
}

// Check reports why a token whose signature or seal already verified
// (tokens.Keyring.Verify) is no longer good given the current credentials, or
// nil when it is. It checks: expiry; revocation of its jti or its session id;
// that its client still exists and is the very OAuthClient object the token
// was issued for (not a later one reusing the client id: boundTo); that the
// client may still have every scope the token carries; and for user tokens
// (those with a session id, whose subject is a username) that the user exists
// and is the same User object, may still have the token's scopes (access
// tokens; refresh tokens are narrowed by the refresh grant instead), is not
// disabled, still allows the client, has the credential generation the token
// was issued with, has no sessionsNotBefore after the token's issue time, and
// has not deauthorized the token's device.
func (s *Snapshot) Check(c *tokens.Claims, now time.Time) error {
	switch {
	case c == nil:
		return ErrUnknownClient
	case !now.Before(c.ExpiresAt.Add(tokens.Leeway)):
		return ErrExpired
	case s.Revoked(c.ID), s.Revoked(c.SessionID):
		return ErrRevoked
	}
	client := s.Client(c.ClientID)
	if client == nil {
		return ErrUnknownClient
	}
	if c.SessionID == "" {
		switch {
		case !boundTo(c, client, nil):
			return ErrOtherObject
		case !subset(c.Scope, client.Scopes):
			return ErrScopeWithdrawn
		}
		return nil
	}
	u := s.User(c.Subject)
	switch {
	case u == nil:
		return ErrUnknownUser
	case !boundTo(c, client, u):
		return ErrOtherObject
	case c.Kind != tokens.Refresh && (!subset(c.Scope, client.Scopes) || !subset(c.Scope, u.Scopes)):
		// A refresh token stays usable: the refresh grant narrows what it
		// mints to the scopes the client and user have now.
		return ErrScopeWithdrawn
	case u.Disabled:
		return ErrUserDisabled
	case len(u.Clients) > 0 && !slices.Contains(u.Clients, c.ClientID):
		return ErrClientNotAllowed
	case u.CredentialGeneration != c.Generation:
		return ErrCredentialsChanged
	case u.SessionsNotBefore != nil && c.IssuedAt.Before(u.SessionsNotBefore.Truncate(time.Second)):
		return ErrSessionEnded
	case c.Device != "" && slices.Contains(u.DeauthorizedDevices, c.Device):
		return ErrDeviceDeauthorized
	}
	return nil
}

// Active reports whether Check finds nothing wrong.
func (s *Snapshot) Active(c *tokens.Claims, now time.Time) bool { return s.Check(c, now) == nil }
