package tokens

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokensmith/tokensmith/internal/keyset"
)

// The hand-written encoders must write the bytes golang-jwt and encoding/json
// wrote before them: resource servers verify tokens of both generations.

var encodeNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// oddStrings need escaping, or look as if they did.
var oddStrings = []string{
	"", "plain", `quote " backslash \ slash /`, "<script>&amp;</script>", "tab\tnewline\nreturn\r\bform\f",
	"\x00\x01\x1f\x7f", "ünïcødé ✓ 🎉", "bad \xff utf8 \xe2\x82", "line\u2028para\u2029end", "\xed\xa0\x80 surrogate",
}

func claimVariants() []*Claims {
	base := func() *Claims {
		return &Claims{Kind: Access, Issuer: "https://auth.example.test", Subject: "alice", ClientID: "mobile",
			Scope: []string{"read", "write"}, IssuedAt: encodeNow, ExpiresAt: encodeNow.Add(time.Hour), ID: NewID(),
			SessionID: "sid-1", Device: "Pixel 9", Generation: 3, Binding: Binding("uid-c", "uid-u", true),
			Audience: []string{"https://api.example.test", "billing"}}
	}
	out := []*Claims{base(), {Kind: Refresh, Issuer: "i", IssuedAt: encodeNow, ExpiresAt: encodeNow, ID: "j"}}
	c := base()
	c.Scope, c.Audience, c.SessionID, c.Device, c.Generation, c.Binding = nil, nil, "", "", 0, ""
	out = append(out, c)
	c = base()
	c.Scope, c.Audience = []string{}, []string{"one"}
	c.Kind = Session
	out = append(out, c)
	for _, s := range oddStrings {
		c := base()
		c.Issuer, c.Subject, c.ClientID, c.SessionID, c.Device, c.Binding = s, s, s, s, s, s
		c.Scope, c.Audience = []string{s, "x" + s, s}, []string{s}
		out = append(out, c)
	}
	return out
}

// wireBefore is the jwtClaims signJWT built for golang-jwt before the encoder.
func wireBefore(c *Claims) jwtClaims {
	return jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: c.Issuer, Subject: c.Subject, IssuedAt: jwt.NewNumericDate(c.IssuedAt), NotBefore: jwt.NewNumericDate(c.IssuedAt),
			ExpiresAt: jwt.NewNumericDate(c.ExpiresAt), ID: c.ID, Audience: jwt.ClaimStrings(c.Audience),
		},
		ClientID: c.ClientID, Scope: c.ScopeString(), SessionID: c.SessionID, Device: c.Device, Generation: c.Generation,
		Binding: c.Binding, SubjectType: c.SubjectType(), Use: string(c.Kind),
	}
}

func TestJWTClaimsAreEncodedAsEncodingJSONDid(t *testing.T) {
	for _, c := range claimVariants() {
		want, err := json.Marshal(wireBefore(c))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJWTClaims(nil, c); !bytes.Equal(got, want) {
			t.Errorf("claims differ:\n got %s\nwant %s", got, want)
		}
	}
}

func TestOpaquePayloadIsEncodedAsEncodingJSONDid(t *testing.T) {
	for _, c := range claimVariants() {
		want, err := json.Marshal(opaquePayload{
			Kind: c.Kind, Issuer: c.Issuer, Subject: c.Subject, ClientID: c.ClientID, Scope: c.Scope,
			IssuedAt: c.IssuedAt.Unix(), ExpiresAt: c.ExpiresAt.Unix(), ID: c.ID,
			SessionID: c.SessionID, Device: c.Device, Generation: c.Generation, Binding: c.Binding, Audience: c.Audience,
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := appendOpaquePayload(nil, c); !bytes.Equal(got, want) {
			t.Errorf("payload differs:\n got %s\nwant %s", got, want)
		}
	}
}

// TestJWTsAreWhatGolangJWTSigned: an HS512 token is deterministic, so it must
// equal golang-jwt's byte for byte; an ES256 token must have golang-jwt's
// signing input and a signature its verifier accepts.
func TestJWTsAreWhatGolangJWTSigned(t *testing.T) {
	set := &keyset.Set{}
	if _, err := set.Reconcile(encodeNow.Add(-time.Hour), 0, 0); err != nil {
		t.Fatal(err)
	}
	kr, err := NewKeyring(set)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range claimVariants() {
		if c.Kind == Refresh {
			continue
		}
		for _, alg := range []keyset.Algorithm{keyset.HS512, keyset.ES256} {
			kid := kr.current[alg]
			method, key := jwt.SigningMethod(jwt.SigningMethodHS512), any(kr.hmac[kid])
			if alg == keyset.ES256 {
				method, key = jwt.SigningMethodES256, kr.ecdsa[kid]
			}
			old := jwt.NewWithClaims(method, wireBefore(c))
			old.Header["kid"] = kid
			if c.Kind == Access {
				old.Header["typ"] = "at+jwt"
			}
			want, err := old.SignedString(key)
			if err != nil {
				t.Fatal(err)
			}
			got, err := kr.signJWT(c, alg)
			if err != nil {
				t.Fatal(err)
			}
			if alg == keyset.HS512 {
				if got != want {
					t.Errorf("HS512 token differs:\n got %s\nwant %s", got, want)
				}
				continue
			}
			gi, wi := strings.LastIndexByte(got, '.'), strings.LastIndexByte(want, '.')
			if got[:gi] != want[:wi] {
				t.Errorf("ES256 signing input differs:\n got %s\nwant %s", got[:gi], want[:wi])
			}
			sig, err := base64.RawURLEncoding.DecodeString(got[gi+1:])
			if err != nil || len(sig) != 64 {
				t.Fatalf("ES256 signature: %d bytes, %v", len(sig), err)
			}
			digest := sha256.Sum256([]byte(got[:gi]))
			r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
			if !ecdsa.Verify(&kr.ecdsa[kid].PublicKey, digest[:], r, s) {
				t.Error("ES256 signature does not verify")
			}
		}
	}
}

func TestRawES256RefusesMalformedSignatures(t *testing.T) {
	for _, der := range [][]byte{nil, {0x30, 0x00}, {0x30, 0x03, 0x02, 0x01, 0x01}, append([]byte{0x30, 0x25, 0x02, 0x21}, make([]byte, 35)...),
		{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00}} {
		if _, err := rawES256(der); err == nil {
			t.Errorf("accepted % x", der)
		}
	}
	// 33-byte integers with a leading zero (a high first bit) are fine.
	der := append([]byte{0x30, 0x46, 0x02, 0x21, 0x00}, bytes.Repeat([]byte{0xff}, 32)...)
	der = append(der, 0x02, 0x21, 0x00)
	der = append(der, bytes.Repeat([]byte{0x80}, 32)...)
	raw, err := rawES256(der)
	if err != nil || raw[0] != 0xff || raw[32] != 0x80 {
		t.Errorf("33-byte integers: %x, %v", raw, err)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range oddStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("%q:\n got %s\nwant %s", s, got, want)
		}
	})
}
