package v1token

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/index"
	st "github.com/tokensmith/tokensmith/server/internal/servertest"
	"github.com/tokensmith/tokensmith/server/tokens"
)

const (
	issuer = "https://tokensmith.test"
	formCT = "application/x-www-form-urlencoded"
)

const (
	bad400 = `{"error":{"code":"400013","code_reason":"invalid_request","message":"Missing or invalid parameters"}}`
	bad401 = `{"error":{"code":"401021","code_reason":"invalid_client","message":"Invalid client_id, client_secret, or session_key"}}`
)

func newFixture(tb testing.TB) (http.Handler, *index.Snapshot) {
	tb.Helper()
	later := st.Now.Add(time.Hour)
	snap := st.Snapshot(tb, []credstore.ClientVerifier{
		{ClientID: "billing", GrantTypes: []string{"client_credentials"}, TokenFormat: "opaque", Scopes: []string{"invoices:read"}, Secrets: []credstore.SecretDigests{
			{ClientSecret: credstore.DigestOf(credstore.PurposeClientSecret, "new-secret")},
			{ClientSecret: credstore.DigestOf(credstore.PurposeClientSecret, "old-secret"), ExpiresAt: &later},
		}},
		{ClientID: "reports", GrantTypes: []string{"client_credentials"}, TokenFormat: "jwt", AccessTokenTTL: credstore.Duration(15 * time.Minute),
			Secrets: []credstore.SecretDigests{{ClientSecret: credstore.DigestOf(credstore.PurposeClientSecret, "r-secret")}}},
		{ClientID: "game", GrantTypes: []string{"session"}, Secrets: []credstore.SecretDigests{{ClientSecret: credstore.DigestOf(credstore.PurposeClientSecret, "g-secret")}}},
	}, nil, st.Keys(tb))
	h := New(st.Deps(snap, issuer))
	r := st.Mount(h.Mount, h.MountNotFound)
	return r, snap
}

func form(id, secret string) string {
	return url.Values{"client_id": {id}, "client_secret": {secret}}.Encode()
}

func TestV1Errors(t *testing.T) {
	h, _ := newFixture(t)
	cases := []struct {
		name, method, path, ct, body string
		header                       []string
		status                       int
		want                         string
	}{
		{"refuses a missing client_secret", "POST", Path, formCT, "client_id=billing", nil, 400, bad400},
		{"refuses a missing client_id", "POST", Path, formCT, "client_secret=new-secret", nil, 400, bad400},
		{"refuses an empty client_secret", "POST", Path, formCT, "client_id=billing&client_secret=", nil, 400, bad400},
		{"refuses an empty body", "POST", Path, formCT, "", nil, 400, bad400},
		{"refuses a JSON body", "POST", Path, "application/json", `{"client_id":"billing","client_secret":"new-secret"}`, nil, 400, bad400},
		{"refuses a body without Content-Type", "POST", Path, "", form("billing", "new-secret"), nil, 400, bad400},
		{"refuses a repeated client_id", "POST", Path, formCT, form("billing", "new-secret") + "&client_id=billing", nil, 400, bad400},
		{"refuses a malformed form", "POST", Path, formCT, "client_id=%zz&client_secret=x", nil, 400, bad400},
		{"refuses Basic and body credentials at once", "POST", Path, formCT, form("billing", "new-secret"),
			[]string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("billing:new-secret"))}, 400, bad400},
		{"refuses a wrong secret", "POST", Path, formCT, form("billing", "nope"), nil, 401, bad401},
		{"refuses an unknown client", "POST", Path, formCT, form("ghost", "new-secret"), nil, 401, bad401},
		{"refuses a client without the client_credentials grant", "POST", Path, formCT, form("game", "g-secret"), nil, 403, `{"error":"Access forbidden for this resource"}`},
		{"answers unknown paths under /v1/ with 404", "POST", "/v1/auth/tokens", formCT, form("billing", "new-secret"), nil, 404, `{"error":"Resource or endpoint not found"}`},
		{"answers GET on unknown paths under /v1/ with 404", "GET", "/v1/", "", "", nil, 404, `{"error":"Resource or endpoint not found"}`},
		{"answers GET with 405", "GET", Path, "", "", nil, 405, `{"error":"Method not allowed"}`},
		{"answers a body over 64 KiB with 413", "POST", Path, formCT, "client_id=" + strings.Repeat("a", 70<<10), nil, 413, `{"error":"Request body too large"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := st.Do(h, c.method, c.path, c.ct, c.body, c.header...)
			if r.Status != c.status || r.Body != c.want {
				t.Fatalf("got %d %s\nwant %d %s", r.Status, r.Body, c.status, c.want)
			}
			if r.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("headers %v", r.Header)
			}
		})
	}
}

func TestV1ServerErrorIsTheDocumentedOne(t *testing.T) {
	r := st.Mount(New(st.Deps(nil, issuer)).Mount)
	resp := st.Do(r, "POST", Path, formCT, form("billing", "new-secret"))
	want := `{"error":{"code":"500999","code_reason":"API_ERROR","message":"Api Error, please contact customer service"}}`
	if resp.Status != 500 || resp.Body != want {
		t.Fatalf("got %d %s", resp.Status, resp.Body)
	}
}

func TestV1IssuesTokens(t *testing.T) {
	h, snap := newFixture(t)
	cases := []struct {
		name, id, secret string
		prefix           string
		expiresIn        float64
		scope            string
	}{
		{"issues an opaque sk- token with the default 3600 s", "billing", "new-secret", tokens.PrefixClientToken, 3600, "invoices:read"},
		{"accepts the previous secret during its grace period", "billing", "old-secret", tokens.PrefixClientToken, 3600, "invoices:read"},
		{"issues an ES256 JWT with the client's accessTokenTTL", "reports", "r-secret", "eyJhbGciOiJFUzI1NiIs", 900, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := st.Do(h, "POST", Path, formCT, form(c.id, c.secret))
			if r.Status != 200 || r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Pragma") != "no-cache" {
				t.Fatalf("got %d %s", r.Status, r.Body)
			}
			m := r.JSON(t)
			data, _ := m["data"].(map[string]any)
			tok, _ := data["access_token"].(string)
			if len(m) != 1 || len(data) != 3 || data["token_type"] != "Bearer" || data["expires_in"] != c.expiresIn || !strings.HasPrefix(tok, c.prefix) {
				t.Fatalf("body %s", r.Body)
			}
			claims, err := snap.Keyring().Verify(tok, issuer, st.Now)
			if err != nil {
				t.Fatal(err)
			}
			if claims.Kind != tokens.Access || claims.Subject != c.id || claims.ClientID != c.id || claims.ScopeString() != c.scope ||
				claims.ExpiresAt.Sub(claims.IssuedAt) != time.Duration(c.expiresIn)*time.Second {
				t.Fatalf("claims %+v", claims)
			}
		})
	}
}

func FuzzV1Request(f *testing.F) {
	h, _ := newFixture(f)
	f.Add(formCT, form("billing", "new-secret"), "")
	f.Add("application/x-www-form-urlencoded; charset=\"", "client_id=%", "Basic ???")
	f.Add("", "", "Basic YmlsbGluZzpuZXctc2VjcmV0")
	f.Fuzz(func(t *testing.T, ct, body, auth string) {
		var hd []string
		if auth != "" {
			hd = []string{"Authorization", auth}
		}
		r := st.Do(h, "POST", Path, ct, body, hd...)
		if r.Status >= 500 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
}
