package oauth2

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/index"
	st "github.com/tokensmith/tokensmith/server/internal/servertest"
	"github.com/tokensmith/tokensmith/server/login"
	"github.com/tokensmith/tokensmith/server/tokens"
)

const (
	issuer = "https://tokensmith.test"
	formCT = "application/x-www-form-urlencoded"
	jsonCT = "application/json"
)

func secret(s string) []credstore.SecretDigests {
	return []credstore.SecretDigests{{ClientSecret: credstore.DigestOf(credstore.PurposeClientSecret, s)}}
}

type fixture struct {
	h    http.Handler
	snap *index.Snapshot
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	keys := st.Keys(tb)
	snap := st.Snapshot(tb, []credstore.ClientVerifier{
		{ClientID: "mobile", GrantTypes: []string{"password", "refresh_token", "client_credentials"}, Scopes: []string{"read", "write"}, Secrets: secret("mobile-secret")},
		{ClientID: "web", GrantTypes: []string{"password", "refresh_token"}, Scopes: []string{"read"}, Secrets: secret("web-secret")},
		{ClientID: "norefresh", GrantTypes: []string{"password"}, Scopes: []string{"read"}, Secrets: secret("nr-secret"),
			AccessTokenTTL: credstore.Duration(time.Hour)},
		{ClientID: "opaque", GrantTypes: []string{"client_credentials"}, TokenFormat: "opaque", Scopes: []string{"a", "b"},
			AccessTokenTTL: credstore.Duration(10 * time.Minute), Secrets: secret("opaque-secret")},
		{ClientID: "my client:1", GrantTypes: []string{"client_credentials"}, Secrets: secret("s&cr:t%")},
	}, []credstore.UserVerifier{
		{Username: "alice", PasswordHash: st.Hash(tb, "s3cret"), Scopes: []string{"read", "admin"}, CredentialGeneration: 2},
		{Username: "bob", PasswordHash: st.Hash(tb, "s3cret"), Disabled: true},
		{Username: "carol", PasswordHash: st.Hash(tb, "s3cret"), Scopes: []string{"read"}, Clients: []string{"web"}},
	}, keys)
	v, err := login.New(login.Options{DummyParams: &st.Cheap})
	if err != nil {
		tb.Fatal(err)
	}
	return &fixture{h: st.Mount(New(st.Deps(snap, issuer), v).Mount), snap: snap}
}

func basic(id, secret string) string { return st.Basic(id, secret) }

func form(kv ...string) string { return st.Form(kv...) }

func errBody(code, desc, hint string) string {
	if hint != "" {
		return `{"error":"` + code + `","error_description":"` + desc + `","hint":"` + hint + `","message":"` + desc + `"}`
	}
	return `{"error":"` + code + `","error_description":"` + desc + `","message":"` + desc + `"}`
}

var (
	wrongCreds   = errBody("invalid_grant", "The user credentials were incorrect.", "")
	badClient    = errBody("invalid_client", "Client authentication failed", "")
	unauthorized = errBody("unauthorized_client", "The authenticated client is not authorized to use this authorization grant type.", "")
	unsupported  = errBody("unsupported_grant_type", descUnsupportedType, "Check that all required parameters have been provided")
)

func invalidReq(hint string) string { return errBody("invalid_request", descInvalidRequest, hint) }
func badScope(string) string {
	return errBody("invalid_scope", descInvalidScope, "Check the requested scopes against the client's allowed scopes")
}

func TestTokenEndpointErrors(t *testing.T) {
	f := newFixture(t)
	pw := func(extra ...string) string {
		return form(append([]string{"grant_type", "password", "client_id", "mobile", "client_secret", "mobile-secret", "username", "alice", "password", "s3cret"}, extra...)...)
	}
	cases := []struct {
		name, method, ct, body string
		header                 []string
		status                 int
		want                   string
		wwwAuth                string
	}{
		{"answers a wrong password as league does", "POST", formCT, form("grant_type", "password", "client_id", "mobile", "client_secret", "mobile-secret", "username", "alice", "password", "nope"), nil, 400, wrongCreds, ""},
		{"answers an unknown user exactly like a wrong password", "POST", formCT, form("grant_type", "password", "client_id", "mobile", "client_secret", "mobile-secret", "username", "zed", "password", "nope"), nil, 400, wrongCreds, ""},
		{"answers a disabled user exactly like a wrong password", "POST", formCT, form("grant_type", "password", "client_id", "mobile", "client_secret", "mobile-secret", "username", "bob", "password", "s3cret"), nil, 400, wrongCreds, ""},
		{"answers a user whose clients exclude this client like a wrong password", "POST", formCT, form("grant_type", "password", "client_id", "mobile", "client_secret", "mobile-secret", "username", "carol", "password", "s3cret"), nil, 400, wrongCreds, ""},
		{"answers a wrong client secret in the body with 401 and no challenge", "POST", formCT, form("grant_type", "password", "client_id", "mobile", "client_secret", "nope", "username", "alice", "password", "s3cret"), nil, 401, badClient, ""},
		{"answers an unknown client with 401", "POST", formCT, form("grant_type", "client_credentials", "client_id", "ghost", "client_secret", "x"), nil, 401, badClient, ""},
		{"answers a wrong Basic secret with 401 and WWW-Authenticate", "POST", formCT, form("grant_type", "client_credentials"), []string{"Authorization", basic("mobile", "nope")}, 401, badClient, `Basic realm="OAuth"`},
		{"refuses client credentials in Basic and the body at once", "POST", formCT, form("grant_type", "client_credentials", "client_id", "mobile", "client_secret", "mobile-secret"), []string{"Authorization", basic("mobile", "mobile-secret")}, 400, invalidReq(""), ""},
		{"refuses a request without client credentials", "POST", formCT, form("grant_type", "client_credentials"), nil, 400, invalidReq("Check the `client_id` parameter"), ""},
		{"refuses a missing username", "POST", formCT, form("grant_type", "password", "client_id", "mobile", "client_secret", "mobile-secret", "password", "s3cret"), nil, 400, invalidReq("Check the `username` parameter"), ""},
		{"refuses a missing password", "POST", formCT, form("grant_type", "password", "client_id", "mobile", "client_secret", "mobile-secret", "username", "alice"), nil, 400, invalidReq("Check the `password` parameter"), ""},
		{"refuses a repeated parameter", "POST", formCT, pw("username", "bob"), nil, 400, invalidReq("Check the `username` parameter"), ""},
		{"refuses a repeated grant_type", "POST", formCT, pw("grant_type", "password"), nil, 400, invalidReq("Check the `grant_type` parameter"), ""},
		{"refuses a repeated JSON key", "POST", jsonCT, `{"grant_type":"password","grant_type":"password"}`, nil, 400, invalidReq("Parameters may not be repeated"), ""},
		{"refuses malformed JSON", "POST", jsonCT, `{"grant_type":`, nil, 400, invalidReq("The request body could not be parsed"), ""},
		{"refuses JSON arrays as values", "POST", jsonCT, `{"grant_type":["password"]}`, nil, 400, invalidReq("The request body could not be parsed"), ""},
		{"refuses a text/plain body", "POST", "text/plain", pw(), nil, 400, invalidReq("Content-Type must be application/x-www-form-urlencoded or application/json"), ""},
		{"refuses a malformed form", "POST", formCT, "grant_type=%zz", nil, 400, invalidReq("The request body could not be parsed"), ""},
		{"refuses a missing grant_type", "POST", formCT, form("client_id", "mobile", "client_secret", "mobile-secret"), nil, 400, unsupported, ""},
		{"refuses an unknown grant_type", "POST", formCT, form("grant_type", "implicit", "client_id", "mobile", "client_secret", "mobile-secret"), nil, 400, unsupported, ""},
		{"refuses a grant the client does not have", "POST", formCT, form("grant_type", "password", "client_id", "opaque", "client_secret", "opaque-secret", "username", "alice", "password", "s3cret"), nil, 400, unauthorized, ""},
		{"refuses a scope the client may not have", "POST", formCT, pw("scope", "read admin"), nil, 400, badScope("admin"), ""},
		{"refuses a scope the user may not have", "POST", formCT, pw("scope", "write"), nil, 400, badScope("write"), ""},
		{"refuses a client_credentials scope the client lacks", "POST", formCT, form("grant_type", "client_credentials", "client_id", "opaque", "client_secret", "opaque-secret", "scope", "a c"), nil, 400, badScope("c"), ""},
		{"refuses a malformed scope without echoing it", "POST", formCT, pw("scope", `read "x"`), nil, 400, badScope(`read "x"`), ""},
		{"refuses a garbage refresh token", "POST", formCT, form("grant_type", "refresh_token", "client_id", "mobile", "client_secret", "mobile-secret", "refresh_token", "tsr_garbage"), nil, 400, errBody("invalid_grant", descInvalidRefresh, "Cannot decrypt the refresh token"), ""},
		{"refuses a missing refresh token", "POST", formCT, form("grant_type", "refresh_token", "client_id", "mobile", "client_secret", "mobile-secret"), nil, 400, invalidReq("Check the `refresh_token` parameter"), ""},
		{"answers GET with 405", "GET", "", "", nil, 405, errBody("invalid_request", descInvalidRequest, "The token endpoint accepts only POST"), ""},
		{"answers a body over 64 KiB with 413", "POST", formCT, "grant_type=" + strings.Repeat("a", 70<<10), nil, 413, errBody("invalid_request", descInvalidRequest, "The request body is too large"), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := st.Do(f.h, c.method, Path, c.ct, c.body, c.header...)
			if r.Status != c.status || r.Body != c.want {
				t.Fatalf("got %d %s\nwant %d %s", r.Status, r.Body, c.status, c.want)
			}
			if got := r.Header.Get("WWW-Authenticate"); got != c.wwwAuth {
				t.Fatalf("WWW-Authenticate = %q, want %q", got, c.wwwAuth)
			}
			if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Pragma") != "no-cache" {
				t.Fatalf("headers %v", r.Header)
			}
		})
	}
}

// token is a decoded success body.
type token struct {
	raw     map[string]any
	access  *tokens.Claims
	refresh *tokens.Claims
	rt      string
}

func (f *fixture) token(t *testing.T, ct, body string, header ...string) token {
	t.Helper()
	r := st.Do(f.h, "POST", Path, ct, body, header...)
	if r.Status != 200 || r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Pragma") != "no-cache" {
		t.Fatalf("got %d %s", r.Status, r.Body)
	}
	tk := token{raw: r.JSON(t)}
	at, _ := tk.raw["access_token"].(string)
	var err error
	if tk.access, err = f.snap.Keyring().Verify(at, issuer, st.Now); err != nil || tk.access.Kind != tokens.Access {
		t.Fatalf("access token: %v", err)
	}
	if tk.rt, _ = tk.raw["refresh_token"].(string); tk.rt != "" {
		if tk.refresh, err = f.snap.Keyring().Verify(tk.rt, issuer, st.Now); err != nil || tk.refresh.Kind != tokens.Refresh {
			t.Fatalf("refresh token: %v", err)
		}
	}
	return tk
}

func TestPasswordGrant(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name, ct, body string
		header         []string
		scope          string
		expiresIn      float64
		refresh        bool
	}{
		{"answers the document's example request", formCT, form("grant_type", "password", "client_id", "mobile", "client_secret", "mobile-secret", "username", "alice", "password", "s3cret", "scope", ""), nil, "read", 31622400, true},
		{"takes a JSON body", jsonCT, `{"grant_type":"password","client_id":"mobile","client_secret":"mobile-secret","username":"alice","password":"s3cret","scope":"read"}`, nil, "read", 31622400, true},
		{"takes HTTP Basic client authentication", formCT, form("grant_type", "password", "username", "alice", "password", "s3cret"), []string{"Authorization", basic("mobile", "mobile-secret")}, "read", 31622400, true},
		{"lets a user's clients list name the client", formCT, form("grant_type", "password", "client_id", "web", "client_secret", "web-secret", "username", "carol", "password", "s3cret"), nil, "read", 31622400, true},
		{"gives no refresh token to a client without the refresh_token grant", formCT, form("grant_type", "password", "client_id", "norefresh", "client_secret", "nr-secret", "username", "alice", "password", "s3cret"), nil, "read", 3600, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tk := f.token(t, c.ct, c.body, c.header...)
			if tk.raw["token_type"] != "Bearer" || tk.raw["expires_in"] != c.expiresIn || (tk.rt != "") != c.refresh {
				t.Fatalf("body %v", tk.raw)
			}
			if !strings.HasPrefix(tk.raw["access_token"].(string), "eyJhbGciOiJFUzI1NiIs") {
				t.Fatal("access token is not an ES256 JWT")
			}
			a := tk.access
			if a.ScopeString() != c.scope || a.SessionID == "" || a.ExpiresAt.Sub(a.IssuedAt) != time.Duration(c.expiresIn)*time.Second {
				t.Fatalf("access claims %+v", a)
			}
			if c.refresh && (!strings.HasPrefix(tk.rt, tokens.PrefixRefresh) || tk.refresh.SessionID != a.SessionID ||
				tk.refresh.ClientID != a.ClientID || tk.refresh.Subject != a.Subject || tk.refresh.Generation != a.Generation) {
				t.Fatalf("refresh claims %+v", tk.refresh)
			}
		})
	}
}

func TestRefreshGrant(t *testing.T) {
	f := newFixture(t)
	mobile := func(extra ...string) string {
		return form(append([]string{"client_id", "mobile", "client_secret", "mobile-secret"}, extra...)...)
	}
	// alice on mobile may have read (mobile: read write; alice: read admin).
	first := f.token(t, formCT, mobile("grant_type", "password", "username", "alice", "password", "s3cret"))

	t.Run("issues a new access and refresh token for the same session", func(t *testing.T) {
		tk := f.token(t, formCT, mobile("grant_type", "refresh_token", "refresh_token", first.rt))
		if tk.access.SessionID != first.access.SessionID || tk.access.ScopeString() != "read" || tk.rt == "" || tk.rt == first.rt {
			t.Fatalf("%+v", tk.access)
		}
	})
	t.Run("may narrow the scope", func(t *testing.T) {
		tk := f.token(t, formCT, mobile("grant_type", "refresh_token", "refresh_token", first.rt, "scope", "read"))
		if tk.access.ScopeString() != "read" {
			t.Fatalf("scope %q", tk.access.ScopeString())
		}
	})
	t.Run("takes Basic client authentication", func(t *testing.T) {
		f.token(t, formCT, form("grant_type", "refresh_token", "refresh_token", first.rt), "Authorization", basic("mobile", "mobile-secret"))
	})
	errCases := []struct {
		name, body string
		want       string
	}{
		{"never widens the scope", mobile("grant_type", "refresh_token", "refresh_token", first.rt, "scope", "read write"), badScope("write")},
		{"refuses a refresh token of another client", form("grant_type", "refresh_token", "client_id", "web", "client_secret", "web-secret", "refresh_token", first.rt),
			errBody("invalid_grant", descInvalidRefresh, "Token is not linked to client")},
		{"refuses an access token as a refresh token", mobile("grant_type", "refresh_token", "refresh_token", first.raw["access_token"].(string)),
			errBody("invalid_grant", descInvalidRefresh, "Cannot decrypt the refresh token")},
	}
	for _, c := range errCases {
		t.Run(c.name, func(t *testing.T) {
			r := st.Do(f.h, "POST", Path, formCT, c.body)
			if r.Status != 400 || r.Body != c.want {
				t.Fatalf("got %d %s\nwant %s", r.Status, r.Body, c.want)
			}
		})
	}
	t.Run("refuses a refresh token once the user's password changed", func(t *testing.T) {
		g := newFixture(t)
		// Same keys are needed: rebuild g's snapshot from f's key set with a new generation.
		snap := st.Snapshot(t, []credstore.ClientVerifier{
			{ClientID: "mobile", GrantTypes: []string{"password", "refresh_token"}, Scopes: []string{"read"}, Secrets: secret("mobile-secret")},
		}, []credstore.UserVerifier{{Username: "alice", PasswordHash: st.Hash(t, "new"), Scopes: []string{"read"}, CredentialGeneration: 3}}, f.snap.Keyring().Set())
		v, _ := login.New(login.Options{DummyParams: &st.Cheap})
		g.h = st.Mount(New(st.Deps(snap, issuer), v).Mount)
		resp := st.Do(g.h, "POST", Path, formCT, mobile("grant_type", "refresh_token", "refresh_token", first.rt))
		if want := errBody("invalid_grant", descInvalidRefresh, "Token has been revoked"); resp.Status != 400 || resp.Body != want {
			t.Fatalf("got %d %s", resp.Status, resp.Body)
		}
	})
}

func TestClientCredentialsGrant(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name, body string
		header     []string
		sub, scope string
		prefix     string
		expiresIn  float64
	}{
		{"issues an ES256 JWT with every client scope, no refresh token and the default hour (not 366 days)", form("grant_type", "client_credentials", "client_id", "mobile", "client_secret", "mobile-secret"), nil, "mobile", "read write", "eyJ", 3600},
		{"issues an opaque token with the client's TTL and the requested scope", form("grant_type", "client_credentials", "client_id", "opaque", "client_secret", "opaque-secret", "scope", "b"), nil, "opaque", "b", tokens.PrefixAccess, 600},
		{"decodes percent-encoded Basic credentials (RFC 6749 2.3.1)", form("grant_type", "client_credentials"), []string{"Authorization", basic("my client:1", "s&cr:t%")}, "my client:1", "", "eyJ", 3600},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tk := f.token(t, formCT, c.body, c.header...)
			if _, ok := tk.raw["refresh_token"]; ok || len(tk.raw) != 3 || tk.raw["expires_in"] != c.expiresIn {
				t.Fatalf("body %v", tk.raw)
			}
			if !strings.HasPrefix(tk.raw["access_token"].(string), c.prefix) || tk.access.Subject != c.sub || tk.access.ClientID != c.sub ||
				tk.access.ScopeString() != c.scope || tk.access.SessionID != "" {
				t.Fatalf("claims %+v", tk.access)
			}
			if got := tk.access.ExpiresAt.Sub(tk.access.IssuedAt); got != time.Duration(c.expiresIn)*time.Second {
				t.Fatalf("the token lives %s, expires_in says %vs", got, c.expiresIn)
			}
		})
	}
}

func FuzzTokenRequest(f *testing.F) {
	fx := newFixture(f)
	f.Add(formCT, form("grant_type", "password", "client_id", "mobile", "client_secret", "mobile-secret", "username", "alice", "password", "s3cret"), "")
	f.Add(jsonCT, `{"grant_type":"client_credentials","client_id":1e400}`, "")
	f.Add(formCT, "grant_type=refresh_token&refresh_token=tsr_AAAA", basic("mobile", "mobile-secret"))
	f.Add(formCT, "grant_type=client_credentials", "Basic %%%")
	f.Add(jsonCT, `{"a":null}`, "Basic Og==")
	f.Fuzz(func(t *testing.T, ct, body, auth string) {
		var h []string
		if auth != "" {
			h = []string{"Authorization", auth}
		}
		r := st.Do(fx.h, "POST", Path, ct, body, h...)
		if r.Status >= 500 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
}

type busy struct{}

func (busy) Login(context.Context, *index.Snapshot, login.Request) (*index.User, error) {
	return nil, login.ErrBusy
}

func TestPasswordGrantAnswersBusyWith503(t *testing.T) {
	f := newFixture(t)
	h := st.Mount(New(st.Deps(f.snap, issuer), busy{}).Mount)
	resp := st.Do(h, "POST", Path, formCT, form("grant_type", "password", "client_id", "mobile", "client_secret", "mobile-secret", "username", "alice", "password", "s3cret"))
	if want := errBody("temporarily_unavailable", descUnavailable, ""); resp.Status != 503 || resp.Body != want || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("got %d %s", resp.Status, resp.Body)
	}
}
