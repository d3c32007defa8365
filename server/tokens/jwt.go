package tokens

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/tokensmith/tokensmith/internal/keyset"
)

// jwtClaims is the wire form of Claims in a JWT, as verifyJWT reads it
// (appendJWTClaims writes the same members).
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

// signJWT encodes and signs c with the current key of alg: the header
// segment was encoded once with the keyring (jwtHeaders), the claims are
// appended to a pooled buffer (appendJWTClaims), and the only allocation of
// the result is the token string.
func (kr *Keyring) signJWT(c *Claims, alg keyset.Algorithm) (string, error) {
	kid, ok := kr.current[alg]
	if !ok {
		return "", ErrNoKeys
	}
	hdr, ok := kr.headers[kid]
	if !ok {
		return "", fmt.Errorf("tokens: %s cannot sign JWTs", alg)
	}
	bp := getBuf()
	defer putBuf(bp)
	typ := 0
	if c.Kind == Access {
		typ = 1
	}
	buf := append((*bp)[:0], hdr[typ]...)
	buf = append(buf, '.')
	// The claims' JSON goes after the header, is base64url-encoded after
	// itself, and the encoding is moved down over it.
	js := len(buf)
	buf = appendJWTClaims(buf, c)
	je := len(buf)
	buf = base64.RawURLEncoding.AppendEncode(buf, buf[js:je])
	n := copy(buf[js:], buf[je:])
	buf = buf[:js+n]
	var sig []byte
	var raw [64]byte
	switch alg {
	case keyset.ES256:
		digest := sha256.Sum256(buf)
		der, err := ecdsa.SignASN1(rand.Reader, kr.ecdsa[kid], digest[:])
		if err != nil {
			return "", err
		}
		if raw, err = rawES256(der); err != nil {
			return "", err
		}
		sig = raw[:]
	case keyset.HS512:
		p := kr.macs[kid]
		mac := p.Get().(hash.Hash)
		mac.Reset()
		mac.Write(buf)
		sig = mac.Sum(raw[:0])
		p.Put(mac)
	default:
		return "", fmt.Errorf("tokens: %s cannot sign JWTs", alg)
	}
	buf = append(buf, '.')
	buf = base64.RawURLEncoding.AppendEncode(buf, sig)
	*bp = buf
	return string(buf), nil
}

// rawES256 turns an ASN.1 ECDSA signature into JWS's fixed-size r || s (RFC 7518 3.4).
func rawES256(der []byte) ([64]byte, error) {
	var out [64]byte
	in := cryptobyte.String(der)
	var seq, r, s cryptobyte.String
	if !in.ReadASN1(&seq, asn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1(&r, asn1.INTEGER) || !seq.ReadASN1(&s, asn1.INTEGER) || !seq.Empty() {
		return out, errors.New("tokens: malformed ECDSA signature")
	}
	for i, v := range [][]byte{r, s} {
		for len(v) > 0 && v[0] == 0 {
			v = v[1:]
		}
		if len(v) > 32 {
			return out, errors.New("tokens: malformed ECDSA signature")
		}
		copy(out[32*i+32-len(v):32*i+32], v)
	}
	return out, nil
}

// jwtHeaders returns a key's two header segments, base64url-encoded: [0] for
// tokens of type JWT, [1] for access tokens (typ at+jwt, RFC 9068). They are
// what golang-jwt wrote for a header map of alg, kid and typ.
func jwtHeaders(alg, kid string) ([2]string, error) {
	var out [2]string
	for i, typ := range []string{"JWT", "at+jwt"} {
		b, err := json.Marshal(map[string]string{"alg": alg, "kid": kid, "typ": typ})
		if err != nil {
			return out, err
		}
		out[i] = base64.RawURLEncoding.EncodeToString(b)
	}
	return out, nil
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
