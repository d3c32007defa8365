package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/index"
	st "github.com/tokensmith/tokensmith/server/internal/servertest"
	"github.com/tokensmith/tokensmith/server/login"
)

const issuer = "https://tokensmith.test"

func newServer(t *testing.T, snapshot func() *index.Snapshot) *Server {
	t.Helper()
	s, err := New(Options{
		Snapshot:          snapshot,
		Issuer:            issuer,
		DeviceLoginClient: "mobile",
		Login:             login.Options{DummyParams: &st.Cheap},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fixtureSnapshot(t *testing.T) *index.Snapshot {
	t.Helper()
	return st.Snapshot(t, []credstore.ClientVerifier{
		{ClientID: "mobile", NumericID: 4242, GrantTypes: []string{"password", "refresh_token", "client_credentials", "session"}, Scopes: []string{"read", "write"},
			Secrets: []credstore.SecretDigests{{
				ClientSecret: credstore.DigestOf(credstore.PurposeClientSecret, "mobile-secret"),
				APIKey:       st.Digest(credstore.PurposeAPIKey, "po2_key"), APISecret: st.Digest(credstore.PurposeAPISecret, "po2_secret"),
			}}},
	}, []credstore.UserVerifier{
		{Username: "alice@example.com", PasswordHash: st.Hash(t, "s3cret"), Scopes: []string{"read", "write"}},
	}, st.Keys(t))
}

// verifyWithJWKS checks a JWT the way a resource server does: with an
// independent JWKS library reading the server's /.well-known/jwks.json.
func verifyWithJWKS(t *testing.T, base, token string) jwt.MapClaims {
	t.Helper()
	kf, err := keyfunc.NewDefaultCtx(context.Background(), []string{base + "/.well-known/jwks.json"})
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(token, claims, kf.Keyfunc, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(issuer)); err != nil {
		t.Fatalf("JWT does not verify through the JWKS: %v", err)
	}
	return claims
}

func TestEveryDialectThroughOneHandler(t *testing.T) {
	snap := fixtureSnapshot(t)
	s := newServer(t, func() *index.Snapshot { return snap })
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	post := func(path, ct, body string) (int, http.Header, string) {
		t.Helper()
		resp, err := http.Post(srv.URL+path, ct, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	cases := []struct {
		name, path, ct, body string
		status               int
		contains             string
	}{
		{"serves the session dialect", "/api/auth/session/4242", "application/json", `{"api_key":"po2_key","secret":"po2_secret"}`, 200, `{"token":"eyJhbGciOiJIUzUxMiIs`},
		{"serves the v1 client-credentials dialect", "/v1/auth/token", "application/x-www-form-urlencoded", "client_id=mobile&client_secret=mobile-secret", 200, `"token_type":"Bearer","expires_in":3600}}`},
		{"serves device login with the trailing slash", "/v1/oauth/?username=alice%40example.com&password=s3cret", "", "", 200, `{"success":true,"data":{"access_token":"tsa_`},
		{"serves device login without the trailing slash", "/v1/oauth?username=alice%40example.com&password=s3cret", "", "", 200, `{"success":true,"data":{"access_token":"tsa_`},
		{"serves the OAuth 2.0 password grant", "/oauth/token", "application/x-www-form-urlencoded", "grant_type=password&client_id=mobile&client_secret=mobile-secret&username=alice%40example.com&password=s3cret&scope=", 200, `{"token_type":"Bearer","expires_in":31622400,"access_token":"eyJ`},
		{"answers unknown /v1/ paths in the v1 shape", "/v1/nothing", "", "", 404, `{"error":"Resource or endpoint not found"}`},
		{"answers other unknown paths with a JSON 404", "/nothing", "", "", 404, `{"error":"not_found","message":"No such endpoint"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, h, body := post(c.path, c.ct, c.body)
			if status != c.status || !strings.Contains(body, c.contains) {
				t.Fatalf("got %d %s", status, body)
			}
			if h.Get("X-Request-Id") == "" {
				t.Fatal("no X-Request-Id")
			}
			if status == 200 && (h.Get("Cache-Control") != "no-store" || h.Get("Pragma") != "no-cache") {
				t.Fatalf("token response is cacheable: %v", h)
			}
		})
	}
	t.Run("password grant JWTs verify through the JWKS with an independent library", func(t *testing.T) {
		_, _, body := post("/oauth/token", "application/x-www-form-urlencoded", "grant_type=password&client_id=mobile&client_secret=mobile-secret&username=alice%40example.com&password=s3cret")
		tok := body[strings.Index(body, `"access_token":"`)+16:]
		tok = tok[:strings.Index(tok, `"`)]
		claims := verifyWithJWKS(t, srv.URL, tok)
		if claims["sub"] != "alice@example.com" || claims["client_id"] != "mobile" || claims["scope"] != "read write" || claims["jti"] == "" || claims["sid"] == "" {
			t.Fatalf("claims %v", claims)
		}
	})
	t.Run("golang.org/x/oauth2 clientcredentials gets a token, with Basic and with body credentials", func(t *testing.T) {
		for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleAutoDetect, oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
			cfg := clientcredentials.Config{ClientID: "mobile", ClientSecret: "mobile-secret", TokenURL: srv.URL + "/oauth/token", Scopes: []string{"read"}, AuthStyle: style}
			tok, err := cfg.Token(context.Background())
			if err != nil {
				t.Fatalf("style %d: %v", style, err)
			}
			// client_credentials tokens live an hour by default, as on /v1/auth/token (issue 15, finding 8).
			if tok.RefreshToken != "" || tok.TokenType != "Bearer" || tok.Expiry.Before(time.Now().Add(59*time.Minute)) || tok.Expiry.After(time.Now().Add(61*time.Minute)) {
				t.Fatalf("style %d: token %+v", style, tok)
			}
			if got := verifyWithJWKS(t, srv.URL, tok.AccessToken)["scope"]; got != "read" {
				t.Fatalf("scope = %v", got)
			}
		}
	})
	t.Run("golang.org/x/oauth2 reads league's errors", func(t *testing.T) {
		cfg := clientcredentials.Config{ClientID: "mobile", ClientSecret: "wrong", TokenURL: srv.URL + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}
		_, err := cfg.Token(context.Background())
		var re *oauth2.RetrieveError
		if !errorsAs(err, &re) || re.ErrorCode != "invalid_client" || re.Response.StatusCode != 401 {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("counts issued tokens and failures in /metrics", func(t *testing.T) {
		admin := httptest.NewServer(s.AdminHandler())
		defer admin.Close()
		clients, users := s.o.Snapshot().Counts()
		if clients == 0 || users == 0 {
			t.Fatal("the fixture has no clients or users: the index gauge would prove nothing")
		}
		resp, err := http.Get(admin.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{
			`tokensmith_tokens_issued_total{dialect="session",grant="session"} 1`,
			`tokensmith_tokens_issued_total{dialect="device",grant="password"} 2`,
			`tokensmith_token_failures_total{dialect="oauth2",grant="client_credentials",reason="invalid_client"} 1`,
			`tokensmith_http_request_duration_seconds_count{code="200",dialect="v1",method="POST"} 1`,
			fmt.Sprintf(`tokensmith_index_entries{kind="clients"} %d`, clients),
			fmt.Sprintf(`tokensmith_index_entries{kind="users"} %d`, users),
		} {
			if !strings.Contains(string(b), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
}

func TestAdminProbes(t *testing.T) {
	var snap *index.Snapshot
	s := newServer(t, func() *index.Snapshot { return snap })
	admin := httptest.NewServer(s.AdminHandler())
	defer admin.Close()
	get := func(path string) int {
		resp, err := http.Get(admin.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if get("/healthz") != 200 || get("/readyz") != 503 {
		t.Fatal("an empty index must be healthy and not ready")
	}
	snap = st.Snapshot(t, nil, nil, nil)
	if get("/readyz") != 503 {
		t.Fatal("ready without signing keys")
	}
	snap = st.Snapshot(t, nil, nil, st.Keys(t))
	if get("/readyz") != 200 {
		t.Fatal("not ready with keys")
	}
}

func TestPanicsAnswerInTheDialectsShape(t *testing.T) {
	s := newServer(t, func() *index.Snapshot { panic("boom") })
	h := s.Handler()
	cases := []struct{ path, ct, body, want string }{
		{"/api/auth/session/1", "application/json", `{"api_key":"a","secret":"b"}`, `{"error":"server_error","message":"The server could not create a session"}`},
		{"/v1/auth/token", "application/x-www-form-urlencoded", "client_id=a&client_secret=b", `{"error":{"code":"500999","code_reason":"API_ERROR","message":"Api Error, please contact customer service"}}`},
		{"/v1/oauth/?username=a&password=b", "", "", `{"success":false,"errors":{"code":"server_error","message":"The server could not log you in, please contact support"}}`},
		{"/oauth/token", "application/x-www-form-urlencoded", "grant_type=client_credentials&client_id=a&client_secret=b", `{"error":"server_error","error_description":"The authorization server encountered an unexpected condition which prevented it from fulfilling the request.","message":"The authorization server encountered an unexpected condition which prevented it from fulfilling the request."}`},
	}
	for _, c := range cases {
		r := st.Do(h, "POST", c.path, c.ct, c.body)
		if r.Status != 500 || r.Body != c.want {
			t.Errorf("%s: got %d %s", c.path, r.Status, r.Body)
		}
	}
}

func TestWrongMethodsAnswerInTheDialectsShape(t *testing.T) {
	snap := fixtureSnapshot(t)
	h := newServer(t, func() *index.Snapshot { return snap }).Handler()
	for path, want := range map[string]string{
		"/api/auth/session/1": `{"error":"method_not_allowed","message":"Only POST is allowed"}`,
		"/v1/auth/token":      `{"error":"Method not allowed"}`,
		"/v1/oauth":           `{"success":false,"errors":{"code":"method_not_allowed","message":"Only POST is allowed"}}`,
		"/oauth/token":        `{"error":"invalid_request","error_description":"The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.","hint":"The token endpoint accepts only POST","message":"The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed."}`,
	} {
		for _, m := range []string{"GET", "PUT", "DELETE"} {
			r := st.Do(h, m, path, "", "")
			if r.Status != 405 || r.Body != want || r.Header.Get("Allow") != "POST" {
				t.Errorf("%s %s: got %d %s", m, path, r.Status, r.Body)
			}
		}
	}
}

func TestRequestIDs(t *testing.T) {
	snap := fixtureSnapshot(t)
	h := newServer(t, func() *index.Snapshot { return snap }).Handler()
	if got := st.Do(h, "POST", "/nothing", "", "", "X-Request-Id", "abc-123").Header.Get("X-Request-Id"); got != "abc-123" {
		t.Fatalf("kept id = %q", got)
	}
	if got := st.Do(h, "POST", "/nothing", "", "", "X-Request-Id", "bad id\x01").Header.Get("X-Request-Id"); got == "" || strings.ContainsAny(got, " \x01") {
		t.Fatalf("replaced id = %q", got)
	}
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies("10.0.0.0/8, 192.168.1.7,fd00::/8")
	if err != nil || len(got) != 3 || got[1].String() != "192.168.1.7/32" {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := ParseTrustedProxies("nope"); err == nil {
		t.Fatal("accepted garbage")
	}
}

var _ = url.Values{}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

func TestClientIP(t *testing.T) {
	trusted, _ := ParseTrustedProxies("10.0.0.0/8")
	cases := []struct {
		name, remote, xff, want string
	}{
		{"uses the peer when it is not a trusted proxy, whatever the header says", "203.0.113.9:5555", "1.2.3.4", "203.0.113.9"},
		{"reads the address a trusted proxy appended", "10.0.0.2:80", "198.51.100.7", "198.51.100.7"},
		{"ignores what the client prepended", "10.0.0.2:80", "1.2.3.4, 198.51.100.7", "198.51.100.7"},
		{"skips a chain of trusted proxies", "10.0.0.2:80", "198.51.100.7, 10.1.1.1", "198.51.100.7"},
		{"stops at garbage", "10.0.0.2:80", "nonsense", "10.0.0.2"},
		{"falls back to the proxy without a header", "10.0.0.2:80", "", "10.0.0.2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", nil)
			r.RemoteAddr = c.remote
			if c.xff != "" {
				r.Header.Set("X-Forwarded-For", c.xff)
			}
			if got := ClientIP(r, trusted).String(); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}

func loginCheap() login.Options { return login.Options{DummyParams: &st.Cheap} }
