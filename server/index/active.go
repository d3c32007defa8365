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
)

// Check reports why a token whose signature or seal already verified
// (tokens.Keyring.Verify) is no longer good given the current credentials, or
// nil when it is. It checks: expiry; revocation of its jti or its session id;
// that its client still exists; and for user tokens (those with a session id,
// whose subject is a username) that the user exists, is not disabled, still
// allows the client, has the credential generation the token was issued with,
// has no sessionsNotBefore after the token's issue time, and has not
// deauthorized the token's device.
func (s *Snapshot) Check(c *tokens.Claims, now time.Time) error {
	switch {
	case c == nil:
		return ErrUnknownClient
	case !now.Before(c.ExpiresAt.Add(tokens.Leeway)):
		return ErrExpired
	case s.Revoked(c.ID), s.Revoked(c.SessionID):
		return ErrRevoked
	case s.Client(c.ClientID) == nil:
		return ErrUnknownClient
	}
	if c.SessionID == "" {
		return nil
	}
	u := s.User(c.Subject)
	switch {
	case u == nil:
		return ErrUnknownUser
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
