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
	parts := strings.Split(genuine, ".")
	if len(parts) != 3 {
		tb.Fatalf("testenv: %d parts in the token to forge, want 3", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		tb.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		tb.Fatal(err)
	}
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
