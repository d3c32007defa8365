package tokens

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"time"
)

// Kind says what a token may be used for. A token is accepted only where its
// kind is expected: a refresh token is never an access token.
type Kind string

const (
	// Access tokens are presented to resource servers.
	Access Kind = "access"
	// Refresh tokens are exchanged at /oauth/token for new access tokens.
	Refresh Kind = "refresh"
	// Session tokens come from the session dialect (POST /api/auth/session/{id}).
	Session Kind = "session"
)

// Claims are what every token carries, whatever its format.
type Claims struct {
	Kind      Kind
	Issuer    string
	Subject   string // the username for user tokens, the client id for client tokens
	ClientID  string
	Scope     []string
	IssuedAt  time.Time
	ExpiresAt time.Time
	ID        string // jti: unique per token
	SessionID string // sid: shared by a login's access and refresh tokens; empty for client tokens
	Device    string // device-info of a device login
	// Generation is the user's credential generation when the token was issued;
	// a password change or disabling makes older generations fail.
	Generation int64
}

// ScopeString joins the scopes with spaces, as OAuth 2.0 writes them.
func (c *Claims) ScopeString() string { return strings.Join(c.Scope, " ") }

// HasScopes reports whether every one of want is granted.
func (c *Claims) HasScopes(want []string) bool {
	for _, w := range want {
		found := false
		for _, s := range c.Scope {
			if s == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// NewID returns 128 random bits as unpadded base64url, for jti and sid.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand never fails on supported platforms; a token id without
		// entropy must not be issued.
		panic("tokens: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// truncate drops sub-second precision: JWT times are whole seconds, and opaque
// tokens use the same so that both formats describe a token identically.
func truncate(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }
