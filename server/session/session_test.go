package session

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/index"
	st "github.com/tokensmith/tokensmith/server/internal/servertest"
	"github.com/tokensmith/tokensmith/server/tokens"
)

const issuer = "https://tokensmith.test"

func fixture(tb testing.TB, alg Alg) (http.Handler, *index.Snapshot) {
	tb.Helper()
	expired := st.Now.Add(-time.Minute)
	later := st.Now.Add(time.Hour)
	snap := st.Snapshot(tb, []credstore.ClientVerifier{
		{ClientID: "game", NumericID: 4242, GrantTypes: []string{"session"}, Scopes: []string{"play"}, Secrets: []credstore.SecretDigests{
			{APIKey: st.Digest(credstore.PurposeAPIKey, "po2_new"), APISecret: st.Digest(credstore.PurposeAPISecret, "sandbox_new")},
			{APIKey: st.Digest(credstore.PurposeAPIKey, "po2_prev"), APISecret: st.Digest(credstore.PurposeAPISecret, "sandbox_prev"), ExpiresAt: &later},
			{APIKey: st.Digest(credstore.PurposeAPIKey, "po2_old"), APISecret: st.Digest(credstore.PurposeAPISecret, "sandbox_old"), ExpiresAt: &expired},
		}},
		{ClientID: "ttl", NumericID: 7, GrantTypes: []string{"session"}, AccessTokenTTL: credstore.Duration(5 * time.Minute), Secrets: []credstore.SecretDigests{
			{APIKey: st.Digest(credstore.PurposeAPIKey, "k7"), APISecret: st.Digest(credstore.PurposeAPISecret, "s7")},
		}},
		{ClientID: "machine", NumericID: 9, GrantTypes: []string{"client_credentials"}, Secrets: []credstore.SecretDigests{
			{APIKey: st.Digest(credstore.PurposeAPIKey, "k9"), APISecret: st.Digest(credstore.PurposeAPISecret, "s9")},
		}},
	}, nil, st.Keys(tb))
	r := st.Mount(New(st.Deps(snap, issuer), alg).Mount)
	return r, snap
}

func TestSessionErrors(t *testing.T) {
	h, _ := fixture(t, "")
	const jsonCT = "application/json"
	good := `{"api_key":"po2_new","secret":"sandbox_new"}`
	cases := []struct {
		name, method, path, ct, body string
		status                       int
		want                         string
	}{
		{"refuses a non-integer client id", "POST", "/api/auth/session/abc", jsonCT, good, 400, `{"error":"invalid_request","message":"client_id must be an integer"}`},
		{"refuses a signed client id", "POST", "/api/auth/session/-5", jsonCT, good, 400, `{"error":"invalid_request","message":"client_id must be an integer"}`},
		{"refuses a client id beyond int64", "POST", "/api/auth/session/99999999999999999999", jsonCT, good, 400, `{"error":"invalid_request","message":"client_id must be an integer"}`},
		{"refuses a missing secret", "POST", "/api/auth/session/4242", jsonCT, `{"api_key":"po2_new"}`, 400, `{"error":"invalid_request","message":"api_key and secret are required"}`},
		{"refuses an empty api_key", "POST", "/api/auth/session/4242", jsonCT, `{"api_key":"","secret":"x"}`, 400, `{"error":"invalid_request","message":"api_key and secret are required"}`},
		{"refuses an empty body", "POST", "/api/auth/session/4242", jsonCT, ``, 400, `{"error":"invalid_request","message":"api_key and secret are required"}`},
		{"refuses malformed JSON", "POST", "/api/auth/session/4242", jsonCT, `{"api_key":`, 400, `{"error":"invalid_request","message":"The request body must be a JSON object"}`},
		{"refuses a non-string api_key", "POST", "/api/auth/session/4242", jsonCT, `{"api_key":1,"secret":"x"}`, 400, `{"error":"invalid_request","message":"The request body must be a JSON object"}`},
		{"refuses trailing data", "POST", "/api/auth/session/4242", jsonCT, good + `{}`, 400, `{"error":"invalid_request","message":"The request body must be a JSON object"}`},
		{"refuses a trailing closing brace", "POST", "/api/auth/session/4242", jsonCT, good + `}`, 400, `{"error":"invalid_request","message":"The request body must be a JSON object"}`},
		{"refuses a trailing closing bracket", "POST", "/api/auth/session/4242", jsonCT, good + " ]", 400, `{"error":"invalid_request","message":"The request body must be a JSON object"}`},
		{"refuses trailing text after white space", "POST", "/api/auth/session/4242", jsonCT, good + "\n}]x", 400, `{"error":"invalid_request","message":"The request body must be a JSON object"}`},
		{"accepts trailing white space", "POST", "/api/auth/session/4242", jsonCT, good + " \r\n\t", 200, ""},
		{"refuses a form body", "POST", "/api/auth/session/4242", "application/x-www-form-urlencoded", "api_key=po2_new&secret=sandbox_new", 415, `{"error":"invalid_request","message":"Content-Type must be application/json"}`},
		{"refuses a wrong secret", "POST", "/api/auth/session/4242", jsonCT, `{"api_key":"po2_new","secret":"nope"}`, 401, `{"error":"invalid_credentials","message":"Invalid client_id, api_key or secret"}`},
		{"refuses a key of another generation paired with this one's secret", "POST", "/api/auth/session/4242", jsonCT, `{"api_key":"po2_prev","secret":"sandbox_new"}`, 401, `{"error":"invalid_credentials","message":"Invalid client_id, api_key or secret"}`},
		{"refuses an expired previous key", "POST", "/api/auth/session/4242", jsonCT, `{"api_key":"po2_old","secret":"sandbox_old"}`, 401, `{"error":"invalid_credentials","message":"Invalid client_id, api_key or secret"}`},
		{"answers an unknown client like a wrong key", "POST", "/api/auth/session/1", jsonCT, good, 401, `{"error":"invalid_credentials","message":"Invalid client_id, api_key or secret"}`},
		{"refuses a client without the session grant", "POST", "/api/auth/session/9", jsonCT, `{"api_key":"k9","secret":"s9"}`, 403, `{"error":"unauthorized_client","message":"This client may not create sessions"}`},
		{"answers GET with 405", "GET", "/api/auth/session/4242", "", "", 405, `{"error":"method_not_allowed","message":"Only POST is allowed"}`},
		{"answers a body over 64 KiB with 413", "POST", "/api/auth/session/4242", jsonCT, `{"api_key":"` + strings.Repeat("a", 70<<10) + `"}`, 413, `{"error":"invalid_request","message":"The request body is too large"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := st.Do(h, c.method, c.path, c.ct, c.body)
			if r.Status != c.status || (c.status != 200 && r.Body != c.want) {
				t.Fatalf("got %d %s\nwant %d %s", r.Status, r.Body, c.status, c.want)
			}
			if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("headers %v", r.Header)
			}
			if c.status == 405 && r.Header.Get("Allow") != "POST" {
				t.Fatalf("Allow = %q", r.Header.Get("Allow"))
			}
		})
	}
}

func TestSessionIssuesTokens(t *testing.T) {
	cases := []struct {
		name, alg, path, body string
		wantAlg               string
		ttl                   time.Duration
		sub                   string
	}{
		{"issues an HS512 JWT by default", "", "/api/auth/session/4242", `{"api_key":"po2_new","secret":"sandbox_new"}`, "HS512", time.Hour, "game"},
		{"accepts the previous key during its grace period", "", "/api/auth/session/4242", `{"api_key":"po2_prev","secret":"sandbox_prev"}`, "HS512", time.Hour, "game"},
		{"uses the client's accessTokenTTL", "", "/api/auth/session/7", `{"api_key":"k7","secret":"s7","extra":true}`, "HS512", 5 * time.Minute, "ttl"},
		{"signs ES256 when configured", "ES256", "/api/auth/session/4242", `{"api_key":"po2_new","secret":"sandbox_new"}`, "ES256", time.Hour, "game"},
		{"takes a body without Content-Type as JSON", "", "/api/auth/session/4242", `{"api_key":"po2_new","secret":"sandbox_new"}`, "HS512", time.Hour, "game"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, snap := fixture(t, Alg(c.alg))
			ct := "application/json; charset=utf-8"
			if strings.Contains(c.name, "without Content-Type") {
				ct = ""
			}
			r := st.Do(h, "POST", c.path, ct, c.body)
			if r.Status != 200 || r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Pragma") != "no-cache" {
				t.Fatalf("got %d %s %v", r.Status, r.Body, r.Header)
			}
			m := r.JSON(t)
			tok, _ := m["token"].(string)
			if len(m) != 1 || tok == "" {
				t.Fatalf("body %s", r.Body)
			}
			if !strings.HasPrefix(tok, map[string]string{"HS512": "eyJhbGciOiJIUzUxMiIs", "ES256": "eyJhbGciOiJFUzI1NiIs"}[c.wantAlg]) {
				t.Fatalf("token header is not %s: %s", c.wantAlg, tok[:30])
			}
			claims, err := snap.Keyring().Verify(tok, issuer, st.Now)
			if err != nil {
				t.Fatal(err)
			}
			if claims.Kind != tokens.Session || claims.Subject != c.sub || claims.ClientID != c.sub || claims.ExpiresAt.Sub(claims.IssuedAt) != c.ttl {
				t.Fatalf("claims %+v", claims)
			}
		})
	}
}

func FuzzSessionRequest(f *testing.F) {
	h, _ := fixture(f, "")
	f.Add("4242", "application/json", `{"api_key":"po2_new","secret":"sandbox_new"}`)
	f.Add("abc", "", `{`)
	f.Add("0", "text/plain", `null`)
	f.Add("4242", "application/json; charset=\"", `{"api_key":null,"secret":[]}`)
	f.Fuzz(func(t *testing.T, id, ct, body string) {
		r := st.Do(h, "POST", "/api/auth/session/"+pathEscape(id), ct, body)
		if r.Status >= 500 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
}

func pathEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&15])))
		}
	}
	return b.String()
}
