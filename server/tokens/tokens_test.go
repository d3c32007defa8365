package tokens_test

import (
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"hash"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokensmith/tokensmith/internal/keyset"
	"github.com/tokensmith/tokensmith/server/tokens"
)

const issuer = "https://auth.example.test"

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newSet(t testing.TB) *keyset.Set {
	t.Helper()
	s := &keyset.Set{}
	if _, err := s.Reconcile(now.Add(-time.Hour), 0, 0); err != nil {
		t.Fatal(err)
	}
	return s
}

func newKeyring(t testing.TB, s *keyset.Set) *tokens.Keyring {
	t.Helper()
	kr, err := tokens.NewKeyring(s)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func claims(kind tokens.Kind) *tokens.Claims {
	return &tokens.Claims{
		Kind: kind, Issuer: issuer, Subject: "alice", ClientID: "mobile", Scope: []string{"read", "write"},
		IssuedAt: now, ExpiresAt: now.Add(time.Hour), SessionID: "sid-1", Device: "Pixel 9", Generation: 3,
		Binding: tokens.Binding("uid-client", "uid-user", true), Audience: []string{"https://api.example.test", "billing"},
	}
}

func mint(t testing.TB, kr *tokens.Keyring, c *tokens.Claims, f tokens.Format, prefix string) string {
	t.Helper()
	tok, err := kr.Mint(c, f, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRoundTrip(t *testing.T) {
	kr := newKeyring(t, newSet(t))
	cases := []struct {
		name   string
		kind   tokens.Kind
		format tokens.Format
		prefix string
		shape  string
	}{
		{"an ES256 access token verifies and says what it was minted with", tokens.Access, tokens.FormatES256, "", "eyJ"},
		{"an HS512 session token verifies", tokens.Session, tokens.FormatHS512, "", "eyJ"},
		{"an HS512 access token verifies", tokens.Access, tokens.FormatHS512, "", "eyJ"},
		{"an opaque client token starts sk-", tokens.Access, tokens.FormatOpaque, tokens.PrefixClientToken, "sk-"},
		{"an opaque access token defaults to tsa_", tokens.Access, tokens.FormatOpaque, "", "tsa_"},
		{"a refresh token is opaque tsr_", tokens.Refresh, tokens.FormatOpaque, tokens.PrefixRefresh, "tsr_"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := claims(tc.kind)
			in.IssuedAt = now.Add(123 * time.Millisecond)
			tok := mint(t, kr, in, tc.format, tc.prefix)
			if !strings.HasPrefix(tok, tc.shape) {
				t.Fatalf("token %q does not start with %q", tok[:8], tc.shape)
			}
			got, err := kr.Verify(tok, issuer, now.Add(time.Minute))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := *in
			want.IssuedAt = now // whole seconds
			if got.Kind != want.Kind || got.Issuer != want.Issuer || got.Subject != want.Subject || got.ClientID != want.ClientID ||
				got.ScopeString() != want.ScopeString() || !got.IssuedAt.Equal(want.IssuedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) ||
				got.ID == "" || got.ID != in.ID || got.SessionID != want.SessionID || got.Device != want.Device || got.Generation != want.Generation ||
				got.Binding != want.Binding || got.Binding == "" || strings.Join(got.Audience, " ") != strings.Join(want.Audience, " ") {
				t.Fatalf("got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestMintRefusesInconsistentKinds(t *testing.T) {
	kr := newKeyring(t, newSet(t))
	for name, tc := range map[string]struct {
		kind   tokens.Kind
		f      tokens.Format
		prefix string
	}{
		"a refresh token as a JWT":                {tokens.Refresh, tokens.FormatES256, ""},
		"a refresh token with an sk- prefix":      {tokens.Refresh, tokens.FormatOpaque, tokens.PrefixClientToken},
		"an access token with the refresh prefix": {tokens.Access, tokens.FormatOpaque, tokens.PrefixRefresh},
		"an unknown prefix":                       {tokens.Access, tokens.FormatOpaque, "xx_"},
	} {
		t.Run("refuses "+name, func(t *testing.T) {
			if tok, err := kr.Mint(claims(tc.kind), tc.f, tc.prefix); err == nil {
				t.Fatalf("minted %q", tok)
			}
		})
	}
	var nilKR *tokens.Keyring
	if _, err := nilKR.Mint(claims(tokens.Access), tokens.FormatES256, ""); !errors.Is(err, tokens.ErrNoKeys) {
		t.Fatalf("nil keyring: %v", err)
	}
}

// b64 is unpadded base64url of a JSON value or raw string.
func b64(v any) string {
	if s, ok := v.(string); ok {
		return base64.RawURLEncoding.EncodeToString([]byte(s))
	}
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hmacSign(h func() hash.Hash, key []byte, signingInput string) string {
	m := hmac.New(h, key)
	m.Write([]byte(signingInput))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func kid(s *keyset.Set, alg keyset.Algorithm) string { return s.Current(alg).ID }

func wireClaims(over map[string]any) map[string]any {
	c := map[string]any{
		"iss": issuer, "sub": "svc", "client_id": "svc", "scope": "read",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "j1", "token_use": "access",
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// signed signs the claims with the real key of alg, so that only the claim under test is wrong.
func signed(t *testing.T, s *keyset.Set, alg keyset.Algorithm, header map[string]any, c map[string]any) string {
	t.Helper()
	k := s.Current(alg)
	mc := jwt.MapClaims(c)
	var tok *jwt.Token
	var key any
	switch alg {
	case keyset.ES256:
		tok = jwt.NewWithClaims(jwt.SigningMethodES256, mc)
		priv, err := k.ECDSA()
		if err != nil {
			t.Fatal(err)
		}
		key = priv
	case keyset.HS512:
		tok = jwt.NewWithClaims(jwt.SigningMethodHS512, mc)
		key = k.Material
	}
	tok.Header["kid"] = k.ID
	for h, v := range header {
		tok.Header[h] = v
	}
	out, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerifyRefusesAttacks(t *testing.T) {
	set := newSet(t)
	kr := newKeyring(t, set)
	esKID, hsKID := kid(set, keyset.ES256), kid(set, keyset.HS512)
	priv, err := set.Current(keyset.ES256).ECDSA()
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	pubRaw, _ := priv.PublicKey.ECDH()
	good := mint(t, kr, claims(tokens.Access), tokens.FormatES256, "")
	parts := strings.Split(good, ".")
	opaque := mint(t, kr, claims(tokens.Access), tokens.FormatOpaque, tokens.PrefixClientToken)
	refresh := mint(t, kr, claims(tokens.Refresh), tokens.FormatOpaque, tokens.PrefixRefresh)
	body := b64(wireClaims(nil))

	confused := func(alg string, h func() hash.Hash, key []byte) string {
		in := b64(map[string]any{"alg": alg, "typ": "JWT", "kid": esKID}) + "." + body
		return in + "." + hmacSign(h, key, in)
	}
	flip := func(tok string, i int) string {
		b := []byte(tok)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}

	cases := []struct {
		name  string
		token string
	}{
		{"refuses the empty string", ""},
		{"refuses alg none with an empty signature", b64(map[string]any{"alg": "none", "kid": esKID}) + "." + body + "."},
		{"refuses alg none without a kid", b64(map[string]any{"alg": "none"}) + "." + body + "."},
		{"refuses HS512 keyed with the ES256 public key's DER (key confusion)", confused("HS512", sha512.New, pubDER)},
		{"refuses HS512 keyed with the ES256 public key's PEM (key confusion)", confused("HS512", sha512.New, pubPEM)},
		{"refuses HS512 keyed with the raw ES256 public point (key confusion)", confused("HS512", sha512.New, pubRaw.Bytes())},
		{"refuses HS256 keyed with the ES256 public key's PEM", confused("HS256", sha256.New, pubPEM)},
		{"refuses an ES256 header naming the HS512 key", func() string {
			in := b64(map[string]any{"alg": "ES256", "kid": hsKID}) + "." + body
			return in + "." + parts[2]
		}()},
		{"refuses an HS512 token under the ES256 kid signed with the real HS512 key", func() string {
			in := b64(map[string]any{"alg": "HS512", "kid": esKID}) + "." + body
			return in + "." + hmacSign(sha512.New, set.Current(keyset.HS512).Material, in)
		}()},
		{"refuses an unknown kid", signed(t, set, keyset.ES256, map[string]any{"kid": "ES256-unknown"}, wireClaims(nil))},
		{"refuses a path-traversal kid", signed(t, set, keyset.ES256, map[string]any{"kid": "../../../../etc/passwd"}, wireClaims(nil))},
		{"refuses a non-string kid", signed(t, set, keyset.ES256, map[string]any{"kid": 42}, wireClaims(nil))},
		{"refuses a missing kid", signed(t, set, keyset.ES256, map[string]any{"kid": nil}, wireClaims(nil))},
		{"refuses a token without exp", signed(t, set, keyset.ES256, nil, wireClaims(map[string]any{"exp": nil}))},
		{"refuses an expired token", signed(t, set, keyset.ES256, nil, wireClaims(map[string]any{"exp": now.Add(-time.Minute).Unix()}))},
		{"refuses a token issued in the future", signed(t, set, keyset.ES256, nil, wireClaims(map[string]any{"iat": now.Add(time.Minute).Unix()}))},
		{"refuses a token not valid before a future nbf", signed(t, set, keyset.ES256, nil, wireClaims(map[string]any{"nbf": now.Add(time.Minute).Unix()}))},
		{"refuses a token without iat", signed(t, set, keyset.ES256, nil, wireClaims(map[string]any{"iat": nil}))},
		{"refuses a token without jti", signed(t, set, keyset.ES256, nil, wireClaims(map[string]any{"jti": nil}))},
		{"refuses a token of another issuer", signed(t, set, keyset.ES256, nil, wireClaims(map[string]any{"iss": "https://evil.example"}))},
		{"refuses a token without an issuer", signed(t, set, keyset.ES256, nil, wireClaims(map[string]any{"iss": nil}))},
		{"refuses an unknown token_use", signed(t, set, keyset.ES256, nil, wireClaims(map[string]any{"token_use": "admin"}))},
		{"refuses a JWT that claims to be a refresh token (refresh tokens are opaque)", signed(t, set, keyset.HS512, nil, wireClaims(map[string]any{"token_use": "refresh"}))},
		{"refuses a string exp", signed(t, set, keyset.ES256, nil, wireClaims(map[string]any{"exp": "never"}))},
		{"refuses a huge exp", signed(t, set, keyset.ES256, nil, wireClaims(map[string]any{"exp": 1e300}))},
		{"refuses a 4-segment token", good + ".AAAA"},
		{"refuses a 2-segment token", parts[0] + "." + parts[1]},
		{"refuses a signature from another token", parts[0] + "." + body + "." + parts[2]},
		{"refuses a tampered payload", parts[0] + "." + flip(parts[1], 10) + "." + parts[2]},
		{"refuses a tampered signature", parts[0] + "." + parts[1] + "." + flip(parts[2], 5)},
		{"refuses padded base64 segments", parts[0] + "=." + parts[1] + "." + parts[2]},
		{"refuses a tampered opaque token", flip(opaque, len(opaque)-3)},
		{"refuses an opaque token whose key id was changed", opaque[:3] + flip(opaque[3:], 0)},
		{"refuses a truncated opaque token", opaque[:len(opaque)-10]},
		{"refuses an opaque access token relabelled as a refresh token", tokens.PrefixRefresh + strings.TrimPrefix(opaque, tokens.PrefixClientToken)},
		{"refuses a refresh token relabelled as an access token", tokens.PrefixAccess + strings.TrimPrefix(refresh, tokens.PrefixRefresh)},
		{"refuses a refresh token relabelled as a client token", tokens.PrefixClientToken + strings.TrimPrefix(refresh, tokens.PrefixRefresh)},
		{"refuses a bare prefix", tokens.PrefixClientToken},
		{"refuses non-base64 after a prefix", tokens.PrefixAccess + "!!!!"},
		{"refuses random garbage", "hello world"},
		{"refuses a token longer than MaxTokenLength", good + strings.Repeat("A", tokens.MaxTokenLength)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := kr.Verify(tc.token, issuer, now.Add(time.Second))
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if !errors.Is(err, tokens.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			if c != nil {
				t.Fatalf("claims returned with an error: %+v", c)
			}
		})
	}
	t.Run("accepts the untampered token (the cases above fail for their own reason)", func(t *testing.T) {
		for _, tok := range []string{good, opaque, refresh, signed(t, set, keyset.ES256, nil, wireClaims(nil))} {
			if _, err := kr.Verify(tok, issuer, now.Add(time.Second)); err != nil {
				t.Fatalf("%v", err)
			}
		}
	})
}

func TestVerifyTimes(t *testing.T) {
	kr := newKeyring(t, newSet(t))
	for _, f := range []struct {
		name   string
		format tokens.Format
		prefix string
	}{{"JWT", tokens.FormatES256, ""}, {"opaque", tokens.FormatOpaque, tokens.PrefixAccess}} {
		tok := mint(t, kr, claims(tokens.Access), f.format, f.prefix)
		t.Run(f.name+" tolerates clock skew within Leeway", func(t *testing.T) {
			if _, err := kr.Verify(tok, issuer, now.Add(-tokens.Leeway+time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := kr.Verify(tok, issuer, now.Add(time.Hour+tokens.Leeway-time.Second)); err != nil {
				t.Fatal(err)
			}
		})
		t.Run(f.name+" is refused once expired", func(t *testing.T) {
			if _, err := kr.Verify(tok, issuer, now.Add(time.Hour+tokens.Leeway+time.Second)); err == nil {
				t.Fatal("accepted")
			}
		})
		t.Run(f.name+" is refused before it was issued", func(t *testing.T) {
			if _, err := kr.Verify(tok, issuer, now.Add(-tokens.Leeway-2*time.Second)); err == nil {
				t.Fatal("accepted")
			}
		})
		t.Run(f.name+" is refused for another issuer", func(t *testing.T) {
			if _, err := kr.Verify(tok, issuer+"/", now); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestVerifyRejectsAMegabyteFast(t *testing.T) {
	kr := newKeyring(t, newSet(t))
	huge := strings.Repeat("A", 1<<20)
	for _, tok := range []string{huge, "eyJ" + huge + ".a.b", tokens.PrefixRefresh + huge} {
		start := time.Now()
		for range 100 {
			if _, err := kr.Verify(tok, issuer, now); err == nil {
				t.Fatal("accepted")
			}
		}
		if d := time.Since(start); d > 50*time.Millisecond {
			t.Fatalf("100 rejections of a 1 MB token took %v: the length is not checked first", d)
		}
	}
}

func TestKeyRotation(t *testing.T) {
	set := newSet(t)
	old := newKeyring(t, set)
	tokES := mint(t, old, claims(tokens.Access), tokens.FormatES256, "")
	tokOpaque := mint(t, old, claims(tokens.Refresh), tokens.FormatOpaque, tokens.PrefixRefresh)
	tokHS := mint(t, old, claims(tokens.Session), tokens.FormatHS512, "")

	if _, err := set.Reconcile(now, time.Nanosecond, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	rotated := newKeyring(t, set)
	t.Run("retired keys still verify what they signed", func(t *testing.T) {
		for _, tok := range []string{tokES, tokOpaque, tokHS} {
			if _, err := rotated.Verify(tok, issuer, now); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("new tokens use the new keys", func(t *testing.T) {
		tok := mint(t, rotated, claims(tokens.Access), tokens.FormatES256, "")
		h, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
		if !strings.Contains(string(h), set.Current(keyset.ES256).ID) {
			t.Fatalf("header %s does not name the current key", h)
		}
		if len(rotated.PublicKeys()) != 2 {
			t.Fatalf("PublicKeys has %d keys, want current and retired", len(rotated.PublicKeys()))
		}
		for kid, pk := range rotated.PublicKeys() {
			if pk == nil || pk.Curve != elliptic.P256() {
				t.Fatalf("public key %s is not a P-256 key", kid)
			}
		}
	})
	if _, err := set.Reconcile(now.Add(48*time.Hour), 0, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	dropped := newKeyring(t, set)
	t.Run("dropped keys verify nothing", func(t *testing.T) {
		for _, tok := range []string{tokES, tokOpaque, tokHS} {
			if _, err := dropped.Verify(tok, issuer, now); err == nil {
				t.Fatal("accepted a token of a dropped key")
			}
		}
	})
	t.Run("a nil keyring verifies nothing and is not complete", func(t *testing.T) {
		var kr *tokens.Keyring
		if _, err := kr.Verify(tokES, issuer, now); err == nil || kr.Complete() {
			t.Fatal("nil keyring accepted a token")
		}
	})
}

func TestOpaqueTokensAreUnreadable(t *testing.T) {
	kr := newKeyring(t, newSet(t))
	c := claims(tokens.Access)
	c.Subject = "very-recognisable-subject"
	tok := mint(t, kr, c, tokens.FormatOpaque, tokens.PrefixAccess)
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok, tokens.PrefixAccess))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "recognisable") || strings.Contains(tok, "recognisable") {
		t.Fatal("opaque token leaks its claims")
	}
	if tok2 := mint(t, kr, claims(tokens.Access), tokens.FormatOpaque, tokens.PrefixAccess); tok2 == tok {
		t.Fatal("two tokens are equal")
	}
}

func FuzzVerify(f *testing.F) {
	set := newSet(f)
	kr := newKeyring(f, set)
	f.Add(mint(f, kr, claims(tokens.Access), tokens.FormatES256, ""))
	f.Add(mint(f, kr, claims(tokens.Session), tokens.FormatHS512, ""))
	f.Add(mint(f, kr, claims(tokens.Access), tokens.FormatOpaque, tokens.PrefixClientToken))
	f.Add(mint(f, kr, claims(tokens.Refresh), tokens.FormatOpaque, tokens.PrefixRefresh))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c.d")
	f.Add("tsr_")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := kr.Verify(tok, issuer, now)
		if err == nil {
			if c == nil || c.ID == "" || c.Issuer != issuer || !now.Before(c.ExpiresAt.Add(tokens.Leeway)) {
				t.Fatalf("accepted inconsistent claims %+v", c)
			}
			// Whatever verifies must be something this keyring minted: re-verify is stable.
			if _, err := kr.Verify(tok, issuer, now); err != nil {
				t.Fatal("verification is not deterministic")
			}
		}
	})
}
