package tokens

import (
	"crypto/rand"
	"crypto/sha256"
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
	// Binding ties the token to the OAuthClient object (and for user tokens
	// the User object) it was issued for, not only to their names: see
	// Binding. Empty in tokens minted before bindings existed.
	Binding string
	// Audience is "aud": who the token is meant for. Tokens minted before
	// audiences existed have none, which resource servers read as the issuer.
	Audience []string
}

// Subject types: what kind of principal a token's subject names. A client id
// and a username may be equal strings; the type keeps them apart.
const (
	SubjectClient = "client"
	SubjectUser   = "user"
)

// SubjectType says whether Subject is a username ("user", tokens of a login,
// which carry a session id) or a client id ("client").
func (c *Claims) SubjectType() string {
	if c.SessionID != "" {
		return SubjectUser
	}
	return SubjectClient
}

// Binding returns the value a token carries to name the objects it was
// issued for: a digest of the OAuthClient's metadata.uid and, for user tokens,
// the User's. A deleted and re-created object (even under the same name,
// client id or username) has a new uid, so tokens of the old one no longer
// match. It is "" when either uid is unknown (a verifier written by a
// controller that predates bindings). The uids are not secret; the digest
// only keeps tokens short and keeps cluster uids out of them.
func Binding(clientUID, userUID string, user bool) string {
	if clientUID == "" || (user && userUID == "") {
		return ""
	}
	h := sha256.New()
	h.Write([]byte("tokensmith/v1/binding\x00"))
	h.Write([]byte(clientUID))
	h.Write([]byte{0})
	h.Write([]byte(userUID))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:16])
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
