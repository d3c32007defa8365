// Package issue is the one minting path of the dialects: the claims of every
// token (iss, iat, exp, jti, sid, scope, subject, binding, audience) are built
// in Claims, and whether a client's access tokens are JWTs or opaque is
// decided in ClientFormat, from the client's tokenFormat. Dialects say what
// they issue (a Token) and in which Format; tokens.Keyring.Mint is called
// from here only.
package issue

import (
	"time"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/index"
	"github.com/tokensmith/tokensmith/server/tokens"
)

// Token is one token a dialect issues.
type Token struct {
	Kind   tokens.Kind
	Client *index.Client
	// User is the logged-in user; nil for a client's own token, whose
	// subject is the client id.
	User  *index.User
	Scope []string
	TTL   time.Duration
	// SessionID ties a login's access and refresh tokens together (user
	// tokens only; a refresh keeps the session's); Device is a device
	// login's device-info.
	SessionID, Device string
}

// Format is how a token is encoded: a JWT signed with ES256 or HS512, or
// opaque with a prefix.
type Format struct {
	Encoding tokens.Format
	Prefix   string
}

// Formats the dialects use.
var (
	ES256        = Format{Encoding: tokens.FormatES256}
	HS512        = Format{Encoding: tokens.FormatHS512}
	OpaqueAccess = Format{Encoding: tokens.FormatOpaque, Prefix: tokens.PrefixAccess}
	// Refresh is the only format of refresh tokens: only this server reads them.
	Refresh = Format{Encoding: tokens.FormatOpaque, Prefix: tokens.PrefixRefresh}
)

// ClientFormat is the format of c's access tokens: opaque with opaquePrefix
// when its tokenFormat says so, an ES256 JWT otherwise.
func ClientFormat(c *index.Client, opaquePrefix string) Format {
	if c.TokenFormat == credstore.TokenFormatOpaque {
		return Format{Encoding: tokens.FormatOpaque, Prefix: opaquePrefix}
	}
	return ES256
}

// Claims are t's claims when issued by issuer at now. A user token without
// a session id starts a new session.
func Claims(issuer string, now time.Time, t Token) *tokens.Claims {
	c := &tokens.Claims{
		Kind:      t.Kind,
		Issuer:    issuer,
		Subject:   t.Client.ClientID,
		ClientID:  t.Client.ClientID,
		Scope:     t.Scope,
		IssuedAt:  now,
		ExpiresAt: now.Add(t.TTL),
		ID:        tokens.NewID(),
		Binding:   index.Binding(t.Client, t.User),
		Audience:  t.Client.Audience(issuer),
	}
	if t.User != nil {
		c.Subject, c.Generation, c.Device = t.User.Username, t.User.CredentialGeneration, t.Device
		c.SessionID = t.SessionID
		if c.SessionID == "" {
			c.SessionID = tokens.NewID()
		}
	}
	return c
}

// Mint builds t's claims and encodes them with kr in format f.
func Mint(kr *tokens.Keyring, issuer string, now time.Time, t Token, f Format) (string, *tokens.Claims, error) {
	c := Claims(issuer, now, t)
	tok, err := kr.Mint(c, f.Encoding, f.Prefix)
	return tok, c, err
}
