package devicelogin

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/index"
	st "github.com/tokensmith/tokensmith/server/internal/servertest"
	"github.com/tokensmith/tokensmith/server/login"
	"github.com/tokensmith/tokensmith/server/tokens"
)

const issuer = "https://tokensmith.test"

type fakeRecorder struct {
	mu      sync.Mutex
	devices []string
}

func (f *fakeRecorder) Record(u index.UserRef, device string, _ time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.devices = append(f.devices, u.Namespace+"/"+u.Name+":"+device)
}

type fixture struct {
	h    http.Handler
	snap *index.Snapshot
	rec  *fakeRecorder
}

func newFixture(tb testing.TB, devMode bool, clientID string) *fixture {
	tb.Helper()
	snap := st.Snapshot(tb, []credstore.ClientVerifier{
		{ClientID: "mobile", GrantTypes: []string{"password"}, Scopes: []string{"read", "write"}},
		{ClientID: "machine", GrantTypes: []string{"client_credentials"}},
	}, []credstore.UserVerifier{
		{Namespace: "default", Name: "alice", Username: "alice", PasswordHash: st.Hash(tb, "s3cret"), Scopes: []string{"read", "admin"},
			CredentialGeneration: 3, KnownDevices: []string{"old-phone"}, DeauthorizedDevices: []string{"stolen"}},
		{Name: "bob", Username: "bob", PasswordHash: st.Hash(tb, "s3cret"), Disabled: true},
		{Name: "carol", Username: "carol", PasswordHash: st.Hash(tb, "s3cret"), Clients: []string{"web"}},
	}, st.Keys(tb))
	v, err := login.New(login.Options{DummyParams: &st.Cheap})
	if err != nil {
		tb.Fatal(err)
	}
	rec := &fakeRecorder{}
	r := st.Mount(New(st.Deps(snap, issuer), Options{ClientID: clientID, DevMode: devMode, Login: v, Recorder: rec}).Mount)
	return &fixture{h: r, snap: snap, rec: rec}
}

const (
	badCreds = `{"success":false,"errors":{"code":"invalid_credentials","message":"Invalid username or password"}}`
	missing  = `{"success":false,"errors":{"code":"invalid_request","message":"username and password are required"}}`
	repeated = `{"success":false,"errors":{"code":"invalid_request","message":"Each parameter may be given only once"}}`
	badDev   = `{"success":false,"errors":{"code":"invalid_request","message":"device-info must be at most 200 characters of text"}}`
	server   = `{"success":false,"errors":{"code":"server_error","message":"The server could not log you in, please contact support"}}`
)

func TestDeviceLoginErrors(t *testing.T) {
	form := "application/x-www-form-urlencoded"
	cases := []struct {
		name         string
		devMode      bool
		client       string
		method, path string
		ct, body     string
		status       int
		want         string
	}{
		{"refuses a wrong password", false, "mobile", "POST", "/v1/oauth/?username=alice&password=nope", "", "", 401, badCreds},
		{"answers an unknown user exactly like a wrong password", false, "mobile", "POST", "/v1/oauth/?username=nobody&password=nope", "", "", 401, badCreds},
		{"answers a disabled user exactly like a wrong password", false, "mobile", "POST", "/v1/oauth/?username=bob&password=s3cret", "", "", 401, badCreds},
		{"answers a user whose clients exclude the device client like a wrong password", false, "mobile", "POST", "/v1/oauth/?username=carol&password=s3cret", "", "", 401, badCreds},
		{"refuses a deauthorized device like a wrong password", false, "mobile", "POST", "/v1/oauth/?username=alice&password=s3cret&device-info=stolen", "", "", 401, badCreds},
		{"refuses a password over the maximum length before hashing", false, "mobile", "POST", "/v1/oauth/?username=alice&password=" + strings.Repeat("x", 1025), "", "", 401, badCreds},
		{"ignores debug=1 outside development mode (unknown user)", false, "mobile", "POST", "/v1/oauth/?username=nobody&password=nope&debug=1", "", "", 401, badCreds},
		{"ignores debug=1 outside development mode (wrong password)", false, "mobile", "POST", "/v1/oauth/?username=alice&password=nope&debug=1", "", "", 401, badCreds},
		{"adds the debug object for an unknown user in development mode", true, "mobile", "POST", "/v1/oauth/?username=nobody&password=nope&debug=1", "", "", 401,
			`{"success":false,"errors":{"code":"invalid_credentials","message":"Invalid username or password"},"debug":{"username":"Username not found"}}`},
		{"adds the debug object for a wrong password in development mode", true, "mobile", "POST", "/v1/oauth/?username=alice&password=nope&debug=1", "", "", 401,
			`{"success":false,"errors":{"code":"invalid_credentials","message":"Invalid username or password"},"debug":{"password":"Password incorrect"}}`},
		{"gives no debug object in development mode when debug=0", true, "mobile", "POST", "/v1/oauth/?username=nobody&password=nope&debug=0", "", "", 401, badCreds},
		{"refuses a missing username", false, "mobile", "POST", "/v1/oauth/?password=x", "", "", 400, missing},
		{"refuses a missing password", false, "mobile", "POST", "/v1/oauth/?username=alice", "", "", 400, missing},
		{"refuses an empty request", false, "mobile", "POST", "/v1/oauth/", "", "", 400, missing},
		{"refuses a parameter given twice in the query", false, "mobile", "POST", "/v1/oauth/?username=alice&username=bob&password=x", "", "", 400, repeated},
		{"refuses a parameter given in the query and the body", false, "mobile", "POST", "/v1/oauth/?username=alice&password=x", form, "username=bob", 400, repeated},
		{"refuses device-info over 200 characters", false, "mobile", "POST", "/v1/oauth/?username=alice&password=s3cret&device-info=" + strings.Repeat("é", 201), "", "", 400, badDev},
		{"refuses device-info with control characters", false, "mobile", "POST", "/v1/oauth/?username=alice&password=s3cret&device-info=a%0Ab", "", "", 400, badDev},
		{"refuses a malformed query", false, "mobile", "POST", "/v1/oauth/?username=%zz", "", "", 400, `{"success":false,"errors":{"code":"invalid_request","message":"The request could not be parsed"}}`},
		{"answers GET with 405", false, "mobile", "GET", "/v1/oauth/?username=alice&password=s3cret", "", "", 405, `{"success":false,"errors":{"code":"method_not_allowed","message":"Only POST is allowed"}}`},
		{"answers a body over 64 KiB with 413", false, "mobile", "POST", "/v1/oauth/", form, "username=" + strings.Repeat("a", 70<<10), 413, `{"success":false,"errors":{"code":"request_too_large","message":"The request body is too large"}}`},
		{"answers a server error when the device login client does not exist", false, "ghost", "POST", "/v1/oauth/?username=alice&password=s3cret", "", "", 500, server},
		{"answers a server error when the device login client lacks the password grant", false, "machine", "POST", "/v1/oauth/?username=alice&password=s3cret", "", "", 500, server},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, c.devMode, c.client)
			r := st.Do(f.h, c.method, c.path, c.ct, c.body)
			if r.Status != c.status || r.Body != c.want {
				t.Fatalf("got %d %s\nwant %d %s", r.Status, r.Body, c.status, c.want)
			}
			if r.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("headers %v", r.Header)
			}
			if len(f.rec.devices) != 0 {
				t.Fatalf("a failed login recorded devices %v", f.rec.devices)
			}
		})
	}
}

func TestDeviceLoginIssuesDeviceSessions(t *testing.T) {
	form := "application/x-www-form-urlencoded"
	cases := []struct {
		name, path, ct, body string
		devMode              bool
		device               string
		recorded             []string
	}{
		{"logs in from the query string with a trailing slash", "/v1/oauth/?username=alice&password=s3cret&device-info=Pixel%208", "", "", false, "Pixel 8", []string{"default/alice:Pixel 8"}},
		{"logs in without the trailing slash", "/v1/oauth?username=alice&password=s3cret&device-info=Pixel%208", "", "", false, "Pixel 8", []string{"default/alice:Pixel 8"}},
		{"logs in from a form body", "/v1/oauth/", form, "username=alice&password=s3cret&device-info=tablet", false, "tablet", []string{"default/alice:tablet"}},
		{"defaults device-info to Unknown", "/v1/oauth/?username=alice&password=s3cret", "", "", false, "Unknown", []string{"default/alice:Unknown"}},
		{"accepts 200 characters of device-info", "/v1/oauth/?username=alice&password=s3cret&device-info=" + strings.Repeat("é", 200), "", "", false, strings.Repeat("é", 200), []string{"default/alice:" + strings.Repeat("é", 200)}},
		{"does not record a device the user status already lists", "/v1/oauth/?username=alice&password=s3cret&device-info=old-phone", "", "", false, "old-phone", nil},
		{"answers success unchanged with debug=1 in development mode", "/v1/oauth/?username=alice&password=s3cret&device-info=old-phone&debug=1", "", "", true, "old-phone", nil},
		{"ignores a JSON body and reads the query", "/v1/oauth/?username=alice&password=s3cret&device-info=old-phone", "application/json", `{"username":"x"}`, false, "old-phone", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, c.devMode, "mobile")
			r := st.Do(f.h, "POST", c.path, c.ct, c.body)
			if r.Status != 200 || r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Pragma") != "no-cache" {
				t.Fatalf("got %d %s", r.Status, r.Body)
			}
			m := r.JSON(t)
			data, _ := m["data"].(map[string]any)
			tok, _ := data["access_token"].(string)
			if len(m) != 2 || m["success"] != true || len(data) != 2 || data["expiry"] != float64(st.Now.Add(30*24*time.Hour).Unix()) {
				t.Fatalf("body %s", r.Body)
			}
			if !strings.HasPrefix(tok, tokens.PrefixAccess) {
				t.Fatalf("token %q is not an opaque access token", tok)
			}
			claims, err := f.snap.Keyring().Verify(tok, issuer, st.Now)
			if err != nil {
				t.Fatal(err)
			}
			if claims.Kind != tokens.Access || claims.Subject != "alice" || claims.ClientID != "mobile" || claims.SessionID == "" ||
				claims.Device != c.device || claims.Generation != 3 || claims.ScopeString() != "read" {
				t.Fatalf("claims %+v", claims)
			}
			if strings.Join(f.rec.devices, ",") != strings.Join(c.recorded, ",") {
				t.Fatalf("recorded %v, want %v", f.rec.devices, c.recorded)
			}
		})
	}
}

func TestDeviceLoginSessionsAreDistinct(t *testing.T) {
	f := newFixture(t, false, "mobile")
	seen := map[string]bool{}
	for range 3 {
		r := st.Do(f.h, "POST", "/v1/oauth/?username=alice&password=s3cret", "", "")
		tok := r.JSON(t)["data"].(map[string]any)["access_token"].(string)
		c, err := f.snap.Keyring().Verify(tok, issuer, st.Now)
		if err != nil || seen[c.SessionID] {
			t.Fatalf("session id reused or token invalid: %v", err)
		}
		seen[c.SessionID] = true
	}
}

func FuzzDeviceLoginRequest(f *testing.F) {
	fx := newFixture(f, true, "mobile")
	f.Add("username=alice&password=s3cret&device-info=x&debug=1", "application/x-www-form-urlencoded", "password=s3cret")
	f.Add("username=%zz", "", "")
	f.Add("", "multipart/form-data; boundary=x", "--x--")
	f.Fuzz(func(t *testing.T, query, ct, body string) {
		req := "/v1/oauth/?" + url.PathEscape(query)
		if _, err := url.ParseRequestURI(req); err != nil {
			return
		}
		r := st.Do(fx.h, "POST", req, ct, body)
		if r.Status >= 500 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
}

type busy struct{}

func (busy) Login(context.Context, *index.Snapshot, login.Request) (*index.User, error) {
	return nil, login.ErrBusy
}

func TestDeviceLoginAnswersBusyWith503(t *testing.T) {
	snap := st.Snapshot(t, []credstore.ClientVerifier{{ClientID: "mobile", GrantTypes: []string{"password"}}}, nil, st.Keys(t))
	r := st.Mount(New(st.Deps(snap, issuer), Options{ClientID: "mobile", Login: busy{}}).Mount)
	resp := st.Do(r, "POST", "/v1/oauth/?username=a&password=b", "", "")
	want := `{"success":false,"errors":{"code":"temporarily_unavailable","message":"Too many logins at once, retry shortly"}}`
	if resp.Status != 503 || resp.Body != want || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("got %d %s %v", resp.Status, resp.Body, resp.Header)
	}
}
