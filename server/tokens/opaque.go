package tokens

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
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

// prefixAD is each prefix as the additional data of its seal, converted once
// (a conversion per token is an allocation: Seal is an interface call).
var prefixAD = map[string][]byte{PrefixClientToken: []byte(PrefixClientToken), PrefixAccess: []byte(PrefixAccess), PrefixRefresh: []byte(PrefixRefresh)}

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

// IsOpaque reports whether token has the shape of a tokensmith opaque token.
func IsOpaque(token string) bool { return opaquePrefix(token) != "" }

func opaquePrefix(token string) string {
	for _, p := range opaquePrefixes {
		if strings.HasPrefix(token, p) {
			return p
		}
	}
	return ""
}

// sealOpaque appends keyID, nonce and the sealed payload to a pooled buffer
// and encodes it once into the token string.
func (kr *Keyring) sealOpaque(c *Claims, prefix string) (string, error) {
	kid, ok := kr.current[keyset.AEAD]
	if !ok {
		return "", ErrNoKeys
	}
	id := aeadKeyID(kid)
	key := kr.aead[id]
	bp := getBuf()
	defer putBuf(bp)
	// The payload's JSON goes first; keyID | nonce | sealed payload is
	// built after it.
	buf := appendOpaquePayload((*bp)[:0], c)
	pe := len(buf)
	buf = append(buf, id[:]...)
	buf = slices.Grow(buf, nonceLen)[:pe+aeadKeyIDLen+nonceLen]
	if _, err := rand.Read(buf[pe+aeadKeyIDLen:]); err != nil {
		return "", err
	}
	buf = key.aead.Seal(buf, buf[pe+aeadKeyIDLen:], buf[:pe], prefixAD[prefix])
	se := len(buf)
	buf = append(buf, prefix...)
	buf = base64.RawURLEncoding.AppendEncode(buf, buf[pe:se])
	*bp = buf
	return string(buf[se:]), nil
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
