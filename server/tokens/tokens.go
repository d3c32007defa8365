package tokens

import (
	"errors"
	"slices"
	"time"

	"github.com/tokensmith/tokensmith/internal/keyset"
)

// Format is how a token is encoded.
type Format int

const (
	// FormatES256 is a JWT signed with the current ES256 key (the default for access tokens).
	FormatES256 Format = iota
	// FormatHS512 is a JWT signed with the current HS512 key (shared-key resource servers, the session dialect).
	FormatHS512
	// FormatOpaque is sealed with the current AES-256-GCM key; the prefix is chosen by kind (see Mint).
	FormatOpaque
)

// DefaultClientTTL is the lifetime of a client's own tokens (client_credentials
// on /oauth/token and /v1/auth/token, session dialect tokens) when the client
// sets no accessTokenTTL: one hour, as the OAuthClient API documents. Password
// logins keep the API document's (../shared/api-docs/003_b9bba3917c3367e0.txt) 366 days (oauth2.DefaultTTL).
const DefaultClientTTL = time.Hour

// Leeway is the clock skew tolerated between replicas when checking times.
const Leeway = 5 * time.Second

// Mint fills in the claims' issuer, id and times, and encodes the token.
// For FormatOpaque, prefix chooses the opaque prefix (PrefixClientToken,
// PrefixAccess, PrefixRefresh); it is ignored for JWTs. Refresh tokens must be
// opaque: they are never meant to be read by anyone but this server.
func (kr *Keyring) Mint(c *Claims, f Format, prefix string) (string, error) {
	if kr == nil {
		return "", ErrNoKeys
	}
	if c.ID == "" {
		c.ID = NewID()
	}
	c.IssuedAt = truncate(c.IssuedAt)
	c.ExpiresAt = truncate(c.ExpiresAt)
	if c.Kind == Refresh && f != FormatOpaque {
		return "", errors.New("tokens: refresh tokens are opaque")
	}
	switch f {
	case FormatES256:
		return kr.signJWT(c, keyset.ES256)
	case FormatHS512:
		return kr.signJWT(c, keyset.HS512)
	case FormatOpaque:
		if prefix == "" {
			prefix = PrefixAccess
			if c.Kind == Refresh {
				prefix = PrefixRefresh
			}
		}
		if !slices.Contains(opaquePrefixes, prefix) || (prefix == PrefixRefresh) != (c.Kind == Refresh) {
			return "", errors.New("tokens: the refresh prefix is for refresh tokens only, and they use no other")
		}
		return kr.sealOpaque(c, prefix)
	}
	return "", errors.New("tokens: unknown format")
}

// ErrInvalid wraps every reason a token is refused; callers answer all of them alike.
var ErrInvalid = errors.New("tokens: invalid token")

// Verify decodes and checks any token this keyring's issuer minted: signature
// or seal, issuer, expiry, issue time. It does not check revocation, the
// token's kind or the user's sessions: the caller does, against the index.
func (kr *Keyring) Verify(token, issuer string, now time.Time) (*Claims, error) {
	if kr == nil || len(token) == 0 || len(token) > MaxTokenLength {
		return nil, ErrInvalid
	}
	var (
		c   *Claims
		err error
	)
	if IsOpaque(token) {
		c, err = kr.openOpaque(token, issuer, now, Leeway)
	} else {
		c, err = kr.verifyJWT(token, issuer, now, Leeway)
	}
	if err != nil {
		return nil, errors.Join(ErrInvalid, err)
	}
	switch c.Kind {
	case Access, Refresh, Session:
	default:
		return nil, ErrInvalid
	}
	// Refresh tokens are minted opaque under their own prefix only: a JWT that
	// says "refresh" (which an HS512 key holder could make) or a relabelled
	// opaque token is not one.
	if (c.Kind == Refresh) != (opaquePrefix(token) == PrefixRefresh) || c.ID == "" {
		return nil, ErrInvalid
	}
	return c, nil
}
