package testenv

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// Forger returns a function that copies the claims of genuine, a token the
// API server issued, sets those in change and signs the result as RS256 with
// a fresh key the cluster never saw: what an attacker could send in place of
// a ServiceAccount token.
func Forger(tb testing.TB, genuine string) func(change map[string]any) string {
	tb.Helper()
	claims := JWTPart(tb, genuine, 1)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return func(change map[string]any) string {
		tb.Helper()
		c := make(map[string]any, len(claims)+len(change))
		for k, v := range claims {
			c[k] = v
		}
		for k, v := range change {
			c[k] = v
		}
		h, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": "forged"})
		p, err := json.Marshal(c)
		if err != nil {
			tb.Fatal(err)
		}
		in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
		sum := sha256.Sum256([]byte(in))
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
		if err != nil {
			tb.Fatal(err)
		}
		return in + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
}

// JWTPart decodes part i of a compact JWS, a JSON object: 0 is the header, 1
// the claims.
func JWTPart(tb testing.TB, token string, i int) map[string]any {
	tb.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		tb.Fatalf("not a JWT: %d segments", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}
