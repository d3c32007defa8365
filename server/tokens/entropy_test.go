package tokens_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/tokensmith/tokensmith/internal/randtest"
	"github.com/tokensmith/tokensmith/server/tokens"
)

// TestTokenIDsAndNoncesCarry128BitsFromCryptoRand: every jti and sid is 128
// random bits, and every opaque token carries a fresh 96-bit GCM nonce next to
// its sealed 128-bit jti, so no two tokens are alike and none is guessable.
func TestTokenIDsAndNoncesCarry128BitsFromCryptoRand(t *testing.T) {
	ids := make([][]byte, randtest.Samples)
	for i := range ids {
		b, err := base64.RawURLEncoding.DecodeString(tokens.NewID())
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = b
	}
	randtest.RequireRandomBits(t, "token id", ids, 16)

	kr := newKeyring(t, newSet(t))
	nonces := make([][]byte, randtest.Samples)
	for i := range nonces {
		c := claims(tokens.Access)
		c.ID = "same-id" // the nonce alone must make each token unique
		tok := mint(t, kr, c, tokens.FormatOpaque, tokens.PrefixAccess)
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok, tokens.PrefixAccess))
		if err != nil {
			t.Fatal(err)
		}
		nonces[i] = raw[4:16] // after the 4-byte key id
	}
	randtest.RequireRandomBits(t, "opaque token nonce", nonces, 12)
}
