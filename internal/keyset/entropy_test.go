package keyset

import (
	"crypto/ecdsa"
	"crypto/x509"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/internal/randtest"
)

// TestGeneratedKeysCarryTheirFullStrengthFromCryptoRand: HS512 keys are 512
// random bits, AES-256-GCM keys 256, and ES256 private scalars 256 (P-256).
func TestGeneratedKeysCarryTheirFullStrengthFromCryptoRand(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for alg, size := range map[Algorithm]int{HS512: MinHMACKeyBytes, AEAD: 32, ES256: 32} {
		samples := make([][]byte, randtest.Samples)
		for i := range samples {
			k, err := generate(alg, now)
			if err != nil {
				t.Fatal(err)
			}
			samples[i] = k.Material
			if alg == ES256 {
				priv, err := x509.ParsePKCS8PrivateKey(k.Material)
				if err != nil {
					t.Fatal(err)
				}
				if samples[i], err = priv.(*ecdsa.PrivateKey).Bytes(); err != nil {
					t.Fatal(err)
				}
			}
		}
		randtest.RequireRandomBits(t, string(alg)+" key", samples, size)
	}
}
