package credstore

import (
	"encoding/base64"
	"testing"

	"github.com/tokensmith/tokensmith/internal/randtest"
)

// TestRandomSecretCarriesTheRequestedBits: the controller generates every
// client secret and password with RandomSecret(32), 256 bits from crypto/rand.
func TestRandomSecretCarriesTheRequestedBits(t *testing.T) {
	samples := make([][]byte, randtest.Samples)
	for i := range samples {
		s, err := RandomSecret(32)
		if err != nil {
			t.Fatal(err)
		}
		if samples[i], err = base64.RawURLEncoding.DecodeString(s); err != nil {
			t.Fatalf("not unpadded base64url: %v", err)
		}
	}
	randtest.RequireRandomBits(t, "secret", samples, 32)
}
