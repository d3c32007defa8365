package server

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/server/index"
	st "github.com/tokensmith/tokensmith/server/internal/servertest"
	"github.com/tokensmith/tokensmith/server/login"
)

// badInput is one malformed request and the answer it must get. Rows with
// hugeHeader are sent by TestRunServesFromSecretsAndShutsDownGracefully to a
// real listener of Run, where net/http refuses them with 431 before any
// handler runs (so the body is net/http's, not the dialect's).
type badInput struct {
	name                  string
	target, contentType   string
	body                  string
	header                []string
	hugeHeader            bool
	status                int
	want                  string
	passwordMayBeVerified bool // the row reaches argon2 (reference rows only)
}

const (
	sessionPath = "/api/auth/session/4242"
	v1Path      = "/v1/auth/token"
	devicePath  = "/v1/oauth/"
	oauth2Path  = "/oauth/token"

	kib = 1 << 10
	mib = 1 << 20

	oauthInvalid = `{"error":"invalid_request","error_description":"The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.",%s"message":"The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed."}`
)

func oauthInvalidHint(hint string) string {
	return strings.Replace(oauthInvalid, "%s", `"hint":"`+hint+`",`, 1)
}

var (
	huge     = strings.Repeat("a", mib)
	oversize = strings.Repeat("a", 70*kib)
	longPass = strings.Repeat("p", 32*kib) // under the body cap, over password.MaxLength
	clientOK = "client_id=mobile&client_secret=mobile-secret"
)

var badInputs = []badInput{
	// Session dialect.
	{name: "session: oversized body", target: sessionPath, contentType: "application/json", body: `{"api_key":"` + oversize + `","secret":"x"}`,
		status: 413, want: `{"error":"invalid_request","message":"The request body is too large"}`},
	{name: "session: wrong content type", target: sessionPath, contentType: "text/plain", body: `{"api_key":"po2_key","secret":"po2_secret"}`,
		status: 415, want: `{"error":"invalid_request","message":"Content-Type must be application/json"}`},
	{name: "session: invalid UTF-8", target: sessionPath, contentType: "application/json", body: "{\"api_key\":\"po2_key\xff\",\"secret\":\"po2_secret\"}",
		status: 400, want: `{"error":"invalid_request","message":"The request body must be a JSON object"}`},
	{name: "session: NUL byte in a field", target: sessionPath, contentType: "application/json", body: `{"api_key":"po2_key","secret":"po2\u0000secret"}`,
		status: 400, want: `{"error":"invalid_request","message":"api_key and secret must be text without NUL characters"}`},
	{name: "session: a second JSON value after the object", target: sessionPath, contentType: "application/json", body: `{"api_key":"po2_key","secret":"po2_secret"}{"api_key":"x"}`,
		status: 400, want: `{"error":"invalid_request","message":"The request body must be a JSON object"}`},
	{name: "session: huge header", target: sessionPath, contentType: "application/json", body: `{"api_key":"a","secret":"b"}`, header: []string{"X-Huge", huge}, hugeHeader: true, status: 431},

	// Client-credentials v1.
	{name: "v1: oversized body", target: v1Path, contentType: form, body: clientOK + "&pad=" + oversize,
		status: 413, want: `{"error":"Request body too large"}`},
	{name: "v1: wrong content type", target: v1Path, contentType: "application/json", body: `{"client_id":"mobile","client_secret":"mobile-secret"}`,
		status: 400, want: `{"error":{"code":"400013","code_reason":"invalid_request","message":"Missing or invalid parameters"}}`},
	{name: "v1: invalid UTF-8", target: v1Path, contentType: form, body: "client_id=mobile%FF&client_secret=mobile-secret",
		status: 400, want: `{"error":{"code":"400013","code_reason":"invalid_request","message":"Missing or invalid parameters"}}`},
	{name: "v1: NUL byte in a field", target: v1Path, contentType: form, body: "client_id=mobile&client_secret=mobile%00secret",
		status: 400, want: `{"error":{"code":"400013","code_reason":"invalid_request","message":"Missing or invalid parameters"}}`},
	{name: "v1: repeated parameter (RFC 6749 3.2)", target: v1Path, contentType: form, body: clientOK + "&client_id=mobile",
		status: 400, want: `{"error":{"code":"400013","code_reason":"invalid_request","message":"Missing or invalid parameters"}}`},
	{name: "v1: huge header", target: v1Path, contentType: form, body: clientOK, header: []string{"X-Huge", huge}, hugeHeader: true, status: 431},

	// Device login.
	{name: "device: oversized body", target: devicePath, contentType: form, body: "username=alice@example.com&password=" + oversize,
		status: 413, want: `{"success":false,"errors":{"code":"request_too_large","message":"The request body is too large"}}`},
	{name: "device: a JSON body is not read", target: devicePath, contentType: "application/json", body: `{"username":"alice@example.com","password":"s3cret"}`,
		status: 400, want: `{"success":false,"errors":{"code":"invalid_request","message":"username and password are required"}}`},
	{name: "device: invalid UTF-8", target: devicePath + "?username=alice%FF&password=s3cret",
		status: 400, want: `{"success":false,"errors":{"code":"invalid_request","message":"The request could not be parsed"}}`},
	{name: "device: NUL byte in a field", target: devicePath + "?username=alice@example.com&password=s3%00cret",
		status: 400, want: `{"success":false,"errors":{"code":"invalid_request","message":"The request could not be parsed"}}`},
	{name: "device: repeated parameter across query and body", target: devicePath + "?username=alice@example.com", contentType: form, body: "username=bob&password=s3cret",
		status: 400, want: `{"success":false,"errors":{"code":"invalid_request","message":"Each parameter may be given only once"}}`},
	{name: "device: 1 MB password in the body", target: devicePath, contentType: form, body: "username=alice@example.com&password=" + huge,
		status: 413, want: `{"success":false,"errors":{"code":"request_too_large","message":"The request body is too large"}}`},
	{name: "device: 32 KiB password is refused before hashing", target: devicePath, contentType: form, body: "username=alice@example.com&password=" + longPass,
		status: 401, want: `{"success":false,"errors":{"code":"invalid_credentials","message":"Invalid username or password"}}`},
	{name: "device: reference: a wrong password of normal length is verified", target: devicePath, contentType: form, body: "username=alice@example.com&password=wrong",
		status: 401, want: `{"success":false,"errors":{"code":"invalid_credentials","message":"Invalid username or password"}}`, passwordMayBeVerified: true},
	{name: "device: 1 MB password in the query", target: devicePath + "?username=alice@example.com&password=" + huge, hugeHeader: true, status: 431},

	// OAuth 2.0 token endpoint.
	{name: "oauth2: oversized body", target: oauth2Path, contentType: form, body: "grant_type=password&" + clientOK + "&pad=" + oversize,
		status: 413, want: oauthInvalidHint("The request body is too large")},
	{name: "oauth2: wrong content type", target: oauth2Path, contentType: "text/plain", body: "grant_type=password&" + clientOK,
		status: 400, want: oauthInvalidHint("Content-Type must be application/x-www-form-urlencoded or application/json")},
	{name: "oauth2: invalid UTF-8 in a form", target: oauth2Path, contentType: form, body: "grant_type=password&" + clientOK + "&username=alice%FF&password=s3cret",
		status: 400, want: oauthInvalidHint("The request body could not be parsed")},
	{name: "oauth2: invalid UTF-8 in JSON", target: oauth2Path, contentType: "application/json", body: "{\"grant_type\":\"password\",\"client_id\":\"mobile\",\"client_secret\":\"mobile-secret\",\"username\":\"alice\xff\",\"password\":\"s3cret\"}",
		status: 400, want: oauthInvalidHint("The request body could not be parsed")},
	{name: "oauth2: NUL byte in a field", target: oauth2Path, contentType: form, body: "grant_type=password&" + clientOK + "&username=alice@example.com%00&password=s3cret",
		status: 400, want: oauthInvalidHint("The request body could not be parsed")},
	{name: "oauth2: repeated parameter (RFC 6749 3.2)", target: oauth2Path, contentType: form, body: "grant_type=password&grant_type=password&" + clientOK + "&username=alice@example.com&password=s3cret",
		status: 400, want: oauthInvalidHint("Check the `grant_type` parameter")},
	{name: "oauth2: 1 MB password", target: oauth2Path, contentType: form, body: "grant_type=password&" + clientOK + "&username=alice@example.com&password=" + huge,
		status: 413, want: oauthInvalidHint("The request body is too large")},
	{name: "oauth2: 32 KiB password is refused before hashing", target: oauth2Path, contentType: form, body: "grant_type=password&" + clientOK + "&username=alice@example.com&password=" + longPass,
		status: 400, want: `{"error":"invalid_grant","error_description":"The user credentials were incorrect.","message":"The user credentials were incorrect."}`},
	{name: "oauth2: reference: a wrong password of normal length is verified", target: oauth2Path, contentType: form, body: "grant_type=password&" + clientOK + "&username=alice@example.com&password=wrong",
		status: 400, want: `{"error":"invalid_grant","error_description":"The user credentials were incorrect.","message":"The user credentials were incorrect."}`, passwordMayBeVerified: true},
	{name: "oauth2: huge header", target: oauth2Path, contentType: form, body: "grant_type=client_credentials&" + clientOK, header: []string{"X-Huge", huge}, hugeHeader: true, status: 431},

	// Resource endpoints.
	{name: "introspect: oversized body", target: "/oauth/introspect", contentType: form, body: clientOK + "&token=" + oversize + oversize,
		status: 413, want: `{"error":"invalid_request","error_description":"The request body is too large."}`},
	{name: "introspect: wrong content type", target: "/oauth/introspect", contentType: "application/json", body: `{"token":"x"}`,
		status: 400, want: `{"error":"invalid_request","error_description":"The request body must be application/x-www-form-urlencoded."}`},
	{name: "introspect: invalid UTF-8", target: "/oauth/introspect", contentType: form, body: clientOK + "&token=x%FF",
		status: 400, want: `{"error":"invalid_request","error_description":"The request body is malformed."}`},
	{name: "introspect: NUL byte in a field", target: "/oauth/introspect", contentType: form, body: clientOK + "&token=x%00",
		status: 400, want: `{"error":"invalid_request","error_description":"The request body is malformed."}`},
	{name: "introspect: repeated parameter (RFC 6749 3.2)", target: "/oauth/introspect", contentType: form, body: clientOK + "&token=x&token=y",
		status: 400, want: `{"error":"invalid_request","error_description":"The token parameter is missing or repeated."}`},
	{name: "revoke: repeated parameter (RFC 6749 3.2)", target: "/oauth/revoke", contentType: form, body: clientOK + "&token=x&token=y",
		status: 400, want: `{"error":"invalid_request","error_description":"The token parameter is missing or repeated."}`},
	{name: "revoke: NUL byte in a field", target: "/oauth/revoke", contentType: form, body: clientOK + "&token=x%00",
		status: 400, want: `{"error":"invalid_request","error_description":"The request body is malformed."}`},
	{name: "introspect: huge header", target: "/oauth/introspect", contentType: form, body: clientOK + "&token=x", header: []string{"X-Huge", huge}, hugeHeader: true, status: 431},
}

// countingLockout counts the logins that got past the length check: its Check
// runs after it and before the password is hashed.
type countingLockout struct{ checks atomic.Int64 }

func (c *countingLockout) Record(*index.User, bool, time.Time) {}

func (c *countingLockout) Check(*index.User, time.Time) bool {
	c.checks.Add(1)
	return false
}

// TestBadInputGetsTheDialectsErrorQuickly sends every malformed request of
// badInputs (but the huge headers, see TestRunServesFromSecretsAndShutsDownGracefully)
// through the whole handler: each gets its 4xx in its dialect's exact shape,
// quickly, and no password over the length limit reaches argon2.
func TestBadInputGetsTheDialectsErrorQuickly(t *testing.T) {
	snap := fixtureSnapshot(t)
	hook := &countingLockout{}
	s, err := New(Options{
		Snapshot: func() *index.Snapshot { return snap }, Issuer: issuer, DeviceLoginClient: "mobile",
		Login:      login.Options{DummyParams: &st.Cheap, Lockout: hook},
		RateLimits: NoRateLimits(),
	})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	for _, c := range badInputs {
		if c.hugeHeader {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			before := hook.checks.Load()
			start := time.Now()
			r := st.Do(h, "POST", c.target, c.contentType, c.body, c.header...)
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %s", d)
			}
			if r.Status != c.status || r.Body != c.want {
				t.Fatalf("got %d %s\nwant %d %s", r.Status, r.Body, c.status, c.want)
			}
			if r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", r.Header.Get("Content-Type"))
			}
			verified := hook.checks.Load() != before
			if verified != c.passwordMayBeVerified {
				t.Fatalf("password verification started: %v, want %v", verified, c.passwordMayBeVerified)
			}
		})
	}
}
