package tokens

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/tokensmith/tokensmith/internal/keyset"
)

// Opaque tokens are prefix + base64url(keyID[4] | nonce[12] | AES-256-GCM(payload)).
// The prefix is authenticated as additional data, so a token cannot be moved
// from one prefix (kind) to another.
const (
	// PrefixClientToken marks opaque client-credentials access tokens, as the v1 API shows ("sk-...").
	PrefixClientToken = "sk-"
	// PrefixAccess marks other opaque access tokens (device logins).
	PrefixAccess = "tsa_"
	// PrefixRefresh marks refresh tokens, which are always opaque.
	PrefixRefresh = "tsr_"
)

var opaquePrefixes = []string{PrefixClientToken, PrefixAccess, PrefixRefresh}

// opaquePayload is the sealed form of Claims; short keys keep tokens short.
type opaquePayload struct {
	Kind       Kind     `json:"k"`
	Issuer     string   `json:"i"`
	Subject    string   `json:"s,omitempty"`
	ClientID   string   `json:"c,omitempty"`
	Scope      []string `json:"sc,omitempty"`
	IssuedAt   int64    `json:"ia"`
	ExpiresAt  int64    `json:"ex"`
	ID         string   `json:"j"`
	SessionID  string   `json:"sid,omitempty"`
	Device     string   `json:"d,omitempty"`
	Generation int64    `json:"g,omitempty"`
	Binding    string   `json:"b,omitempty"`
	Audience   []string `json:"a,omitempty"`
}

const nonceLen = 12

// isOpaque reports whether token has the shape of a tokensmith opaque token.
func isOpaque(token string) bool { return opaquePrefix(token) != "" }

func opaquePrefix(token string) string {
	for _, p := range opaquePrefixes {
		if strings.HasPrefix(token, p) {
			return p
		}
	}
	return ""
}

func (kr *Keyring) sealOpaque(c *Claims, prefix string) (string, error) {
	kid, ok := kr.current[keyset.AEAD]
	if !ok {
		return "", ErrNoKeys
	}
	id := aeadKeyID(kid)
	key := kr.aead[id]
	payload, err := json.Marshal(opaquePayload{
		Kind: c.Kind, Issuer: c.Issuer, Subject: c.Subject, ClientID: c.ClientID, Scope: c.Scope,
		IssuedAt: c.IssuedAt.Unix(), ExpiresAt: c.ExpiresAt.Unix(), ID: c.ID,
		SessionID: c.SessionID, Device: c.Device, Generation: c.Generation, Binding: c.Binding, Audience: c.Audience,
	})
	if err != nil {
		return "", err
	}
	buf := make([]byte, aeadKeyIDLen+nonceLen, aeadKeyIDLen+nonceLen+len(payload)+key.aead.Overhead())
	copy(buf, id[:])
	if _, err := rand.Read(buf[aeadKeyIDLen:]); err != nil {
		return "", err
	}
	buf = key.aead.Seal(buf, buf[aeadKeyIDLen:], payload, []byte(prefix))
	return prefix + base64.RawURLEncoding.EncodeToString(buf), nil
}

func (kr *Keyring) openOpaque(token, issuer string, now time.Time, leeway time.Duration) (*Claims, error) {
	prefix := opaquePrefix(token)
	raw, err := base64.RawURLEncoding.DecodeString(token[len(prefix):])
	if err != nil || len(raw) < aeadKeyIDLen+nonceLen+16 {
		return nil, errMalformed
	}
	var id [aeadKeyIDLen]byte
	copy(id[:], raw)
	key, ok := kr.aead[id]
	if !ok {
		return nil, errors.New("tokens: unknown key")
	}
	nonce := raw[aeadKeyIDLen : aeadKeyIDLen+nonceLen]
	payload, err := key.aead.Open(nil, nonce, raw[aeadKeyIDLen+nonceLen:], []byte(prefix))
	if err != nil {
		return nil, errors.New("tokens: opaque token does not authenticate")
	}
	var p opaquePayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, errMalformed
	}
	c := &Claims{
		Kind: p.Kind, Issuer: p.Issuer, Subject: p.Subject, ClientID: p.ClientID, Scope: p.Scope,
		IssuedAt: time.Unix(p.IssuedAt, 0).UTC(), ExpiresAt: time.Unix(p.ExpiresAt, 0).UTC(), ID: p.ID,
		SessionID: p.SessionID, Device: p.Device, Generation: p.Generation, Binding: p.Binding, Audience: p.Audience,
	}
	if c.Issuer != issuer {
		return nil, errors.New("tokens: token of another issuer")
	}
	if !now.Before(c.ExpiresAt.Add(leeway)) {
		return nil, errors.New("tokens: token is expired")
	}
	if c.IssuedAt.After(now.Add(leeway)) {
		return nil, errors.New("tokens: token used before issued")
	}
	return c, nil
}
