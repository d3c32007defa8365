package resource

import (
	"crypto/hmac"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/internal/keyset"
	st "github.com/tokensmith/tokensmith/server/internal/servertest"
	"github.com/tokensmith/tokensmith/server/tokens"
)

// attacks are tokens that must never be active, each beside a valid client token.
func (f *fixture) attacks() map[string]string {
	f.t.Helper()
	good := f.clientToken(nil)
	parts := strings.Split(good, ".")
	payload := parts[1]
	b64 := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	esKID := f.keys.Current(keyset.ES256).ID
	priv, _ := f.keys.Current(keyset.ES256).ECDSA()
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	confusedInput := b64(map[string]string{"alg": "HS512", "kid": esKID, "typ": "at+jwt"}) + "." + payload
	mac := hmac.New(sha512.New, pemKey)
	mac.Write([]byte(confusedInput))

	other := newFixture(f.t) // same claims, another installation's keys
	foreign := other.clientToken(nil)
	otherIssuer := f.clientToken(func(c *tokens.Claims) { c.Issuer = "https://evil.example.test" })
	expired := f.clientToken(func(c *tokens.Claims) { c.IssuedAt, c.ExpiresAt = now.Add(-2*time.Hour), now.Add(-time.Hour) })
	return map[string]string{
		"an expired token":                               expired,
		"a token signed by another key":                  foreign,
		"a token with a forged signature":                parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])),
		"an alg:none token":                              b64(map[string]string{"alg": "none", "kid": esKID}) + "." + payload + ".",
		"an HS512 token keyed with the ES256 public key": confusedInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)),
		"a token of another issuer":                      otherIssuer,
		"garbage":                                        "not-a-token",
	}
}

func TestIntrospect(t *testing.T) {
	f := newFixture(t)
	rs := basic("rs", "rs-secret")
	client := f.clientToken(nil)
	opaque := f.mint(&tokens.Claims{Kind: tokens.Access, Subject: "svc", ClientID: "svc", Scope: []string{"read"}, ID: "jti-opaque"}, tokens.FormatOpaque, tokens.PrefixClientToken)
	access, refresh := f.userTokens("sid-1")
	session := f.mint(&tokens.Claims{Kind: tokens.Session, Subject: "game", ClientID: "game", ID: "jti-session"}, tokens.FormatHS512, "")
	disabled := f.mint(&tokens.Claims{Kind: tokens.Access, Subject: "bob", ClientID: "mobile", SessionID: "sid-bob", Generation: 1, ID: "jti-bob"}, tokens.FormatES256, "")
	iat, exp := now.Add(-time.Minute).Unix(), now.Add(time.Hour).Unix()

	const inactive = `{"active":false}` + "\n"
	cases := []struct {
		name   string
		token  string
		status int
		body   string
	}{
		{"describes an active client JWT", client, 200, fmt.Sprintf(`{"active":true,"client_id":"svc","scope":"read","token_type":"Bearer","exp":%d,"iat":%d,"nbf":%d,"sub":"svc","sub_type":"client","iss":%q,"aud":[%q],"jti":"jti-svc"}`+"\n", exp, iat, iat, issuer, issuer)},
		{"describes an active opaque sk- token", opaque, 200, fmt.Sprintf(`{"active":true,"client_id":"svc","scope":"read","token_type":"Bearer","exp":%d,"iat":%d,"nbf":%d,"sub":"svc","sub_type":"client","iss":%q,"aud":[%q],"jti":"jti-opaque"}`+"\n", exp, iat, iat, issuer, issuer)},
		{"describes a user's access token with the username", access, 200, fmt.Sprintf(`{"active":true,"client_id":"mobile","username":"alice","scope":"read write","token_type":"Bearer","exp":%d,"iat":%d,"nbf":%d,"sub":"alice","sub_type":"user","iss":%q,"aud":[%q],"jti":"at-sid-1","sid":"sid-1"}`+"\n", exp, iat, iat, issuer, issuer)},
		{"describes a refresh token", refresh, 200, fmt.Sprintf(`{"active":true,"client_id":"mobile","username":"alice","scope":"read write","token_type":"refresh_token","exp":%d,"iat":%d,"nbf":%d,"sub":"alice","sub_type":"user","iss":%q,"aud":[%q],"jti":"rt-sid-1","sid":"sid-1"}`+"\n", now.Add(24*time.Hour).Unix(), iat, iat, issuer, issuer)},
		{"describes a session dialect token", session, 200, fmt.Sprintf(`{"active":true,"client_id":"game","token_type":"session","exp":%d,"iat":%d,"nbf":%d,"sub":"game","sub_type":"client","iss":%q,"aud":[%q],"jti":"jti-session"}`+"\n", exp, iat, iat, issuer, issuer)},
		{"answers a disabled user's token as inactive", disabled, 200, inactive},
	}
	for name, tok := range f.attacks() {
		cases = append(cases, struct {
			name   string
			token  string
			status int
			body   string
		}{"answers " + name + " as inactive", tok, 200, inactive})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := f.do(post(PathIntrospect, form("token", tc.token), "Authorization", rs))
			if res.status != tc.status || res.body != tc.body {
				t.Fatalf("got %d %s\nwant %d %s", res.status, res.body, tc.status, tc.body)
			}
			if res.header.Get("Cache-Control") != "no-store" || res.header.Get("Pragma") != "no-cache" {
				t.Fatalf("cache headers %v", res.header)
			}
		})
	}
}

func TestIntrospectErrors(t *testing.T) {
	f := newFixture(t)
	tok := f.clientToken(nil)
	invalidClient := `{"error":"invalid_client","error_description":"Client authentication failed."}` + "\n"
	invalidReq := func(d string) string { return `{"error":"invalid_request","error_description":"` + d + `"}` + "\n" }
	big := form("token", tok, "pad", strings.Repeat("x", 70<<10))
	cases := []struct {
		name      string
		req       *http.Request
		status    int
		body      string
		challenge string
	}{
		{"refuses a caller without client credentials", post(PathIntrospect, form("token", tok)), 401, invalidClient, `Basic realm="OAuth"`},
		{"refuses a wrong Basic secret", post(PathIntrospect, form("token", tok), "Authorization", basic("rs", "wrong")), 401, invalidClient, `Basic realm="OAuth"`},
		{"refuses a wrong body secret", post(PathIntrospect, form("token", tok, "client_id", "rs", "client_secret", "wrong")), 401, invalidClient, `Basic realm="OAuth"`},
		{"refuses an unknown client", post(PathIntrospect, form("token", tok, "client_id", "ghost", "client_secret", "rs-secret")), 401, invalidClient, `Basic realm="OAuth"`},
		{"refuses Basic and body credentials at once", post(PathIntrospect, form("token", tok, "client_id", "rs", "client_secret", "rs-secret"), "Authorization", basic("rs", "rs-secret")), 400, invalidReq("The request is malformed."), ""},
		{"refuses a missing token", post(PathIntrospect, form("client_id", "rs", "client_secret", "rs-secret")), 400, invalidReq("The token parameter is missing or repeated."), ""},
		{"refuses a repeated token", post(PathIntrospect, form("token", tok, "token", tok, "client_id", "rs", "client_secret", "rs-secret")), 400, invalidReq("The token parameter is missing or repeated."), ""},
		{"refuses a JSON body", func() *http.Request {
			r := post(PathIntrospect, `{"token":"x"}`, "Authorization", basic("rs", "rs-secret"))
			r.Header.Set("Content-Type", "application/json")
			return r
		}(), 400, invalidReq("The request body must be application/x-www-form-urlencoded."), ""},
		{"refuses a body over 64 KiB with 413", post(PathIntrospect, big, "Authorization", basic("rs", "rs-secret")), 413, invalidReq("The request body is too large."), ""},
		{"refuses a malformed form", post(PathIntrospect, "token=%zz", "Authorization", basic("rs", "rs-secret")), 400, invalidReq("The request body is malformed."), ""},
		{"refuses GET with 405", httptest.NewRequest(http.MethodGet, PathIntrospect+"?token="+tok, nil), 405, invalidReq("Method not allowed."), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := f.do(tc.req)
			if res.status != tc.status || res.body != tc.body || res.header.Get("WWW-Authenticate") != tc.challenge {
				t.Fatalf("got %d %q %s\nwant %d %q %s", res.status, res.header.Get("WWW-Authenticate"), res.body, tc.status, tc.challenge, tc.body)
			}
			if strings.Contains(res.body, tok) {
				t.Fatal("the answer echoes the token")
			}
		})
	}
	t.Run("answers 503 before the index has keys", func(t *testing.T) {
		h := New(Options{Issuer: issuer})
		w := httptest.NewRecorder()
		h.introspect(w, post(PathIntrospect, form("token", tok), "Authorization", basic("rs", "rs-secret")))
		if w.Code != 503 {
			t.Fatalf("got %d", w.Code)
		}
	})
}

func TestRevoke(t *testing.T) {
	f := newFixture(t)
	mobile := basic("mobile", "mobile-secret")
	introspect := func(tok string) bool {
		res := f.do(post(PathIntrospect, form("token", tok), "Authorization", basic("rs", "rs-secret")))
		return strings.HasPrefix(res.body, `{"active":true`)
	}
	revoke := func(auth, tok string) response {
		return f.do(post(PathRevoke, form("token", tok, "token_type_hint", "access_token"), "Authorization", auth))
	}
	access1, refresh1 := f.userTokens("sid-1")
	access2, refresh2 := f.userTokens("sid-2")
	svcToken := f.clientToken(nil)

	t.Run("answers 200 and does nothing for another client's token", func(t *testing.T) {
		res := revoke(mobile, svcToken)
		if res.status != 200 || res.body != "" || !introspect(svcToken) || len(f.revocations()) != 0 {
			t.Fatalf("got %d %q, revocations %v", res.status, res.body, f.revocations())
		}
	})
	t.Run("answers 200 for an unknown token", func(t *testing.T) {
		if res := revoke(mobile, "garbage"); res.status != 200 || len(f.revocations()) != 0 {
			t.Fatalf("got %d", res.status)
		}
	})
	t.Run("revokes an access token alone", func(t *testing.T) {
		if res := revoke(mobile, access1); res.status != 200 || res.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("got %d %v", res.status, res.header)
		}
		if introspect(access1) || !introspect(refresh1) {
			t.Fatal("access token still active, or its refresh token ended too")
		}
		revs := f.revocations()
		if len(revs) != 1 || revs[0].ID != "at-sid-1" || !revs[0].ExpiresAt.Equal(now.Add(time.Hour+tokens.Leeway)) {
			t.Fatalf("recorded %+v", revs)
		}
	})
	t.Run("writes nothing when revoking again", func(t *testing.T) {
		if res := revoke(mobile, access1); res.status != 200 || len(f.revocations()) != 1 {
			t.Fatalf("got %d, %d revocations", res.status, len(f.revocations()))
		}
	})
	t.Run("revokes a whole session with its refresh token", func(t *testing.T) {
		if res := revoke(mobile, refresh2); res.status != 200 {
			t.Fatalf("got %d", res.status)
		}
		if introspect(access2) || introspect(refresh2) {
			t.Fatal("the session's tokens are still active")
		}
		revs := f.revocations()
		last := revs[len(revs)-1]
		if last.ID != "sid-2" || !last.ExpiresAt.Equal(now.Add(MaxTokenLifetime)) {
			t.Fatalf("recorded %+v, want the session until every refresh token of it expired", last)
		}
	})
	t.Run("refuses an unauthenticated caller", func(t *testing.T) {
		res := f.do(post(PathRevoke, form("token", svcToken)))
		if res.status != 401 || !introspect(svcToken) {
			t.Fatalf("got %d", res.status)
		}
	})
	t.Run("answers 503 when the revocation cannot be recorded", func(t *testing.T) {
		f.mu.Lock()
		f.failing = true
		f.mu.Unlock()
		defer func() { f.mu.Lock(); f.failing = false; f.mu.Unlock() }()
		res := revoke(basic("svc", "svc-secret"), svcToken)
		if res.status != 503 || res.header.Get("Retry-After") == "" || !introspect(svcToken) {
			t.Fatalf("got %d %s", res.status, res.body)
		}
		if res.body != `{"error":"temporarily_unavailable","error_description":"The server cannot handle the request now; retry later."}`+"\n" {
			t.Fatalf("body %s", res.body)
		}
	})
	t.Run("answers 503 without a revoker rather than pretend", func(t *testing.T) {
		h := New(Options{Snapshot: f.snapshot, Issuer: issuer, Now: func() time.Time { return now }})
		w := httptest.NewRecorder()
		h.revoke(w, post(PathRevoke, form("token", svcToken), "Authorization", basic("svc", "svc-secret")))
		if w.Code != 503 {
			t.Fatalf("got %d", w.Code)
		}
	})
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	client := f.clientToken(func(c *tokens.Claims) { c.Scope = []string{"read", "write"} })
	access, refresh := f.userTokens("sid-1")
	session := f.mint(&tokens.Claims{Kind: tokens.Session, Subject: "game", ClientID: "game", ID: "jti-session"}, tokens.FormatHS512, "")
	revoked := f.clientToken(func(c *tokens.Claims) { c.ID = "jti-revoked" })
	if err := f.Revoke(t.Context(), credstore.Revocation{ID: "jti-revoked", ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	type want struct {
		status                  int
		challenge               string
		subject, client, scopes string
	}
	invalid := want{status: 401, challenge: `Bearer error="invalid_token"`}
	cases := []struct {
		name   string
		method string
		target string
		auth   string
		want   want
	}{
		{"admits a valid client token with its identity", "GET", "/auth/verify", "Bearer " + client, want{200, "", "svc", "svc", "read write"}},
		{"admits a valid user token with the username", "GET", "/auth/verify", "Bearer " + access, want{200, "", "alice", "mobile", "read write"}},
		{"takes POST as well", "POST", "/auth/verify", "Bearer " + client, want{200, "", "svc", "svc", "read write"}},
		{"takes Envoy's appended original path", "PUT", "/auth/verify/api/v1/things?x=1", "Bearer " + client, want{200, "", "svc", "svc", "read write"}},
		{"takes a lower-case bearer scheme", "GET", "/auth/verify", "bearer " + client, want{200, "", "svc", "svc", "read write"}},
		{"admits a token that has every required scope", "GET", "/auth/verify?scope=read%20write", "Bearer " + client, want{200, "", "svc", "svc", "read write"}},
		{"forbids a token missing a required scope", "GET", "/auth/verify?scope=read+admin", "Bearer " + client, want{status: 403, challenge: `Bearer error="insufficient_scope", scope="read admin"`}},
		{"refuses a missing Authorization header with a bare challenge", "GET", "/auth/verify", "", want{status: 401, challenge: "Bearer"}},
		{"refuses Basic credentials", "GET", "/auth/verify", basic("svc", "svc-secret"), invalid},
		{"refuses an empty bearer", "GET", "/auth/verify", "Bearer ", invalid},
		{"refuses a revoked token", "GET", "/auth/verify", "Bearer " + revoked, invalid},
		{"refuses a refresh token presented as an access token", "GET", "/auth/verify", "Bearer " + refresh, invalid},
		{"refuses a session dialect token", "GET", "/auth/verify", "Bearer " + session, invalid},
		{"refuses a scope parameter that is not a scope token", "GET", "/auth/verify?scope=%22", "Bearer " + client, want{status: 400, challenge: `Bearer error="invalid_request"`}},
	}
	for name, tok := range f.attacks() {
		cases = append(cases, struct {
			name   string
			method string
			target string
			auth   string
			want   want
		}{"refuses " + name, "GET", "/auth/verify", "Bearer " + tok, invalid})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			res := f.do(r)
			got := want{res.status, res.header.Get("WWW-Authenticate"), res.header.Get(HeaderSubject), res.header.Get(HeaderClient), res.header.Get(HeaderScopes)}
			if got != tc.want || res.body != "" {
				t.Fatalf("got %+v body %q\nwant %+v", got, res.body, tc.want)
			}
		})
	}
}

func TestDiscovery(t *testing.T) {
	f := newFixture(t)
	t.Run("publishes the ES256 public keys and nothing secret", func(t *testing.T) {
		res := f.do(httptest.NewRequest("GET", PathJWKS, nil))
		if res.status != 200 || res.header.Get("Content-Type") != "application/json" {
			t.Fatalf("got %d %v", res.status, res.header)
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal([]byte(res.body), &set); err != nil {
			t.Fatal(err)
		}
		if len(set.Keys) != 1 || set.Keys[0].KeyID != f.keys.Current(keyset.ES256).ID || set.Keys[0].Algorithm != "ES256" || set.Keys[0].Use != "sig" || !set.Keys[0].IsPublic() {
			t.Fatalf("keys %+v", set.Keys)
		}
		for _, secret := range []string{`"d"`, `"k"`, `"oct"`, f.keys.Current(keyset.HS512).ID} {
			if strings.Contains(res.body, secret) {
				t.Fatalf("JWKS contains %s: %s", secret, res.body)
			}
		}
		// An independent library verifies a token with the published key alone.
		tok := f.clientToken(nil)
		jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		keys := set.Key(jws.Signatures[0].Header.KeyID)
		if len(keys) != 1 {
			t.Fatal("the token's kid is not in the JWKS")
		}
		if _, err := jws.Verify(keys[0]); err != nil {
			t.Fatalf("go-jose cannot verify with the JWKS: %v", err)
		}
	})
	t.Run("publishes retired keys until they are dropped", func(t *testing.T) {
		keys := st.Keys(t)
		if _, err := keys.Reconcile(now, time.Nanosecond, 24*time.Hour); err != nil {
			t.Fatal(err)
		}
		g := newFixture(t)
		g.keys = keys
		g.rebuild()
		res := g.do(httptest.NewRequest("GET", PathJWKS, nil))
		var set jose.JSONWebKeySet
		_ = json.Unmarshal([]byte(res.body), &set)
		if len(set.Keys) != 2 {
			t.Fatalf("%d keys, want current and retired", len(set.Keys))
		}
	})
	t.Run("describes the server (RFC 8414)", func(t *testing.T) {
		res := f.do(httptest.NewRequest("GET", PathMetadata, nil))
		want := `{"issuer":"https://auth.example.test","token_endpoint":"https://auth.example.test/oauth/token","jwks_uri":"https://auth.example.test/.well-known/jwks.json",` +
			`"introspection_endpoint":"https://auth.example.test/oauth/introspect","revocation_endpoint":"https://auth.example.test/oauth/revoke",` +
			`"response_types_supported":[],"grant_types_supported":["client_credentials","password","refresh_token"],` +
			`"token_endpoint_auth_methods_supported":["client_secret_basic","client_secret_post"],` +
			`"introspection_endpoint_auth_methods_supported":["client_secret_basic","client_secret_post"],` +
			`"revocation_endpoint_auth_methods_supported":["client_secret_basic","client_secret_post"]}` + "\n"
		if res.status != 200 || res.body != want {
			t.Fatalf("got %d %s", res.status, res.body)
		}
	})
	t.Run("refuses POST on the discovery documents", func(t *testing.T) {
		for _, p := range []string{PathJWKS, PathMetadata} {
			if res := f.do(httptest.NewRequest("POST", p, nil)); res.status != 405 || res.header.Get("Allow") != "GET, HEAD" {
				t.Fatalf("%s: got %d %v", p, res.status, res.header)
			}
		}
	})
}
