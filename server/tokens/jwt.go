package tokens

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokensmith/tokensmith/internal/keyset"
)

// jwtClaims is the wire form of Claims in a JWT.
type jwtClaims struct {
	jwt.RegisteredClaims
	ClientID   string `json:"client_id,omitempty"`
	Scope      string `json:"scope,omitempty"`
	SessionID  string `json:"sid,omitempty"`
	Device     string `json:"device,omitempty"`
	Generation int64  `json:"gen,omitempty"`
	// Binding: see Claims.Binding.
	Binding string `json:"bnd,omitempty"`
	// SubjectType is "client" or "user": a client id and a username may be the same string.
	SubjectType string `json:"sub_type,omitempty"`
	// Use distinguishes access, refresh and session tokens; the header's typ says the same for access tokens (RFC 9068).
	Use string `json:"token_use"`
}

// MaxTokenLength bounds what is parsed at all; longer input is rejected before any work.
const MaxTokenLength = 8 * 1024

var errMalformed = errors.New("tokens: malformed token")

func (kr *Keyring) signJWT(c *Claims, alg keyset.Algorithm) (string, error) {
	kid, ok := kr.current[alg]
	if !ok {
		return "", ErrNoKeys
	}
	wire := jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    c.Issuer,
			Subject:   c.Subject,
			IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
			NotBefore: jwt.NewNumericDate(c.IssuedAt),
			ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
			ID:        c.ID,
			Audience:  jwt.ClaimStrings(c.Audience),
		},
		ClientID:    c.ClientID,
		Scope:       c.ScopeString(),
		SessionID:   c.SessionID,
		Device:      c.Device,
		Generation:  c.Generation,
		Binding:     c.Binding,
		SubjectType: c.SubjectType(),
		Use:         string(c.Kind),
	}
	var t *jwt.Token
	var key any
	switch alg {
	case keyset.ES256:
		t = jwt.NewWithClaims(jwt.SigningMethodES256, wire)
		key = kr.ecdsa[kid]
	case keyset.HS512:
		t = jwt.NewWithClaims(jwt.SigningMethodHS512, wire)
		key = kr.hmac[kid]
	default:
		return "", fmt.Errorf("tokens: %s cannot sign JWTs", alg)
	}
	t.Header["kid"] = kid
	if c.Kind == Access {
		t.Header["typ"] = "at+jwt"
	}
	return t.SignedString(key)
}

// verifyJWT checks signature, algorithm, kid, issuer and times. The accepted
// algorithm is fixed by the kid's key, so no header can pick another one
// (no "none", no HS256 keyed with an ES256 public key).
func (kr *Keyring) verifyJWT(token, issuer string, now time.Time, leeway time.Duration) (*Claims, error) {
	if strings.Count(token, ".") != 2 {
		return nil, errMalformed
	}
	var wire jwtClaims
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg(), jwt.SigningMethodHS512.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithStrictDecoding(),
	)
	_, err := parser.ParseWithClaims(token, &wire, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if priv, ok := kr.ecdsa[kid]; ok {
			if t.Method != jwt.SigningMethodES256 {
				return nil, errors.New("tokens: algorithm does not match the key")
			}
			return &priv.PublicKey, nil
		}
		if key, ok := kr.hmac[kid]; ok {
			if t.Method != jwt.SigningMethodHS512 {
				return nil, errors.New("tokens: algorithm does not match the key")
			}
			return key, nil
		}
		return nil, errors.New("tokens: unknown key id")
	})
	if err != nil {
		return nil, fmt.Errorf("tokens: invalid JWT: %w", err)
	}
	if wire.IssuedAt == nil || wire.ID == "" {
		return nil, errMalformed
	}
	c := &Claims{
		Kind:       Kind(wire.Use),
		Issuer:     wire.Issuer,
		Subject:    wire.Subject,
		ClientID:   wire.ClientID,
		IssuedAt:   wire.IssuedAt.Time,
		ExpiresAt:  wire.ExpiresAt.Time,
		ID:         wire.ID,
		SessionID:  wire.SessionID,
		Device:     wire.Device,
		Generation: wire.Generation,
		Binding:    wire.Binding,
		Audience:   []string(wire.Audience),
	}
	if wire.Scope != "" {
		c.Scope = strings.Fields(wire.Scope)
	}
	return c, nil
}
