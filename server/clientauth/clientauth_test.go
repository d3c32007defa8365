package clientauth

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/index"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func digest(s string) credstore.Digest { return credstore.DigestOf(credstore.PurposeClientSecret, s) }

func snapshot(t testing.TB) *index.Snapshot {
	t.Helper()
	past, future := now.Add(-time.Minute), now.Add(time.Hour)
	s, err := index.NewSnapshot([]credstore.ClientVerifier{
		{ClientID: "mobile", Secrets: []credstore.SecretDigests{{ClientSecret: digest("new-secret")}, {ClientSecret: digest("old-secret"), ExpiresAt: &future}, {ClientSecret: digest("expired-secret"), ExpiresAt: &past}}},
		{ClientID: "my client:1", Secrets: []credstore.SecretDigests{{ClientSecret: digest("s&cr:t% +")}}},
	}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// basic encodes as RFC 6749 2.3.1 asks: form-urlencode, then Basic.
func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

func rawBasic(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }

func TestAuthenticate(t *testing.T) {
	snap := snapshot(t)
	cases := []struct {
		name     string
		header   []string
		form     url.Values
		wantID   string
		wantCode string
		method   Method
	}{
		{"accepts the current secret in the body", nil, url.Values{"client_id": {"mobile"}, "client_secret": {"new-secret"}}, "mobile", "", MethodPost},
		{"accepts the current secret in Basic", []string{basic("mobile", "new-secret")}, nil, "mobile", "", MethodBasic},
		{"accepts a lower-case basic scheme", []string{"basic " + strings.TrimPrefix(basic("mobile", "new-secret"), "Basic ")}, nil, "mobile", "", MethodBasic},
		{"accepts the previous secret during its grace period", nil, url.Values{"client_id": {"mobile"}, "client_secret": {"old-secret"}}, "mobile", "", MethodPost},
		{"refuses a previous secret whose grace period ended", nil, url.Values{"client_id": {"mobile"}, "client_secret": {"expired-secret"}}, "", CodeInvalidClient, MethodPost},
		{"percent-decodes Basic credentials (RFC 6749 2.3.1)", []string{basic("my client:1", "s&cr:t% +")}, nil, "my client:1", "", MethodBasic},
		{"decodes + in Basic credentials as a space", []string{rawBasic("my+client%3A1:s%26cr%3At%25+%2B")}, nil, "my client:1", "", MethodBasic},
		{"tolerates a body client_id that names the Basic client", []string{basic("mobile", "new-secret")}, url.Values{"client_id": {"mobile"}}, "mobile", "", MethodBasic},
		{"refuses a wrong secret", nil, url.Values{"client_id": {"mobile"}, "client_secret": {"nope"}}, "", CodeInvalidClient, MethodPost},
		{"refuses a wrong Basic secret", []string{basic("mobile", "nope")}, nil, "", CodeInvalidClient, MethodBasic},
		{"refuses an unknown client like a wrong secret", nil, url.Values{"client_id": {"ghost"}, "client_secret": {"new-secret"}}, "", CodeInvalidClient, MethodPost},
		{"refuses no credentials at all", nil, nil, "", CodeInvalidClient, MethodNone},
		{"refuses a client_id without a secret", nil, url.Values{"client_id": {"mobile"}}, "", CodeInvalidClient, MethodPost},
		{"refuses a secret without a client_id", nil, url.Values{"client_secret": {"new-secret"}}, "", CodeInvalidClient, MethodPost},
		{"refuses Basic and a body secret at once", []string{basic("mobile", "new-secret")}, url.Values{"client_id": {"mobile"}, "client_secret": {"new-secret"}}, "", CodeInvalidRequest, MethodBasic},
		{"refuses Basic with a body client_id naming another client", []string{basic("mobile", "new-secret")}, url.Values{"client_id": {"other"}}, "", CodeInvalidRequest, MethodBasic},
		{"refuses a repeated client_id", nil, url.Values{"client_id": {"mobile", "mobile"}, "client_secret": {"new-secret"}}, "", CodeInvalidRequest, MethodNone},
		{"refuses a repeated client_secret", nil, url.Values{"client_id": {"mobile"}, "client_secret": {"new-secret", "x"}}, "", CodeInvalidRequest, MethodNone},
		{"refuses two Basic headers", []string{basic("mobile", "new-secret"), basic("mobile", "new-secret")}, nil, "", CodeInvalidRequest, MethodBasic},
		{"refuses malformed base64", []string{"Basic %%%"}, nil, "", CodeInvalidClient, MethodBasic},
		{"refuses Basic without a colon", []string{rawBasic("mobile")}, nil, "", CodeInvalidClient, MethodBasic},
		{"refuses Basic with an empty secret", []string{basic("mobile", "")}, nil, "", CodeInvalidClient, MethodBasic},
		{"refuses bad percent-encoding in Basic", []string{rawBasic("mob%ZZile:new-secret")}, nil, "", CodeInvalidClient, MethodBasic},
		{"refuses control characters in Basic", []string{basic("mobile\n", "new-secret")}, nil, "", CodeInvalidClient, MethodBasic},
		{"ignores a Bearer header and uses the body", []string{"Bearer abc"}, url.Values{"client_id": {"mobile"}, "client_secret": {"new-secret"}}, "mobile", "", MethodPost},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/oauth/token", nil)
			for _, h := range tc.header {
				r.Header.Add("Authorization", h)
			}
			c, m, err := AuthenticateAt(r, tc.form, snap, now)
			if m != tc.method {
				t.Errorf("method %v, want %v", m, tc.method)
			}
			if tc.wantCode == "" {
				if err != nil || c == nil || c.ClientID != tc.wantID {
					t.Fatalf("got %v, %v; want client %q", c, err, tc.wantID)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != tc.wantCode || c != nil {
				t.Fatalf("got %v, %v; want %s", c, err, tc.wantCode)
			}
			if e.InvalidRequest() != (tc.wantCode == CodeInvalidRequest) || e.InvalidClient() != (tc.wantCode == CodeInvalidClient) {
				t.Fatal("predicates disagree with Code")
			}
			if (e.Status == 401) != (tc.wantCode == CodeInvalidClient) {
				t.Fatalf("status %d for %s", e.Status, e.Code)
			}
			for _, secret := range []string{"new-secret", "nope", "old-secret"} {
				if strings.Contains(e.Error(), secret) {
					t.Fatalf("error %q quotes a secret", e.Error())
				}
			}
		})
	}
	t.Run("refuses everything with a nil snapshot", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/", nil)
		if _, _, err := Authenticate(r, url.Values{"client_id": {"mobile"}, "client_secret": {"new-secret"}}, nil); err == nil {
			t.Fatal("accepted")
		}
	})
}

func TestMatchDigest(t *testing.T) {
	future, past := now.Add(time.Second), now
	gens := []credstore.SecretDigests{{ClientSecret: digest("a")}, {ClientSecret: digest("b"), ExpiresAt: &future}, {ClientSecret: digest("c"), ExpiresAt: &past}, {}}
	for secret, want := range map[string]bool{"a": true, "b": true, "c": false, "": false, "d": false} {
		if got := matchDigest(gens, digest(secret), now); got != want {
			t.Errorf("matchDigest(%q) = %v, want %v", secret, got, want)
		}
	}
	if matchDigest(gens, credstore.Digest{}, now) {
		t.Error("the zero digest matched an unset generation")
	}
}

func TestParseBasic(t *testing.T) {
	cases := []struct {
		header, id, secret string
		ok                 bool
	}{
		{basic("a", "b"), "a", "b", true},
		{basic("a:b", "c:d"), "a:b", "c:d", true},
		{rawBasic("a:b:c"), "a", "b:c", true},
		{"Basic  " + base64.StdEncoding.EncodeToString([]byte("a:b")), "a", "b", true},
		{"BASIC " + base64.StdEncoding.EncodeToString([]byte("a:b")), "a", "b", true},
		{"Basic", "", "", false},
		{"Basic ", "", "", false},
		{"Bearer a:b", "", "", false},
		{"Basic " + base64.RawStdEncoding.EncodeToString([]byte("a:bc")), "", "", false},
		{"Basic " + strings.Repeat("QUFB", 2000), "", "", false},
		{rawBasic("%zz:b"), "", "", false},
		{rawBasic("a:%00"), "", "", false},
	}
	for _, tc := range cases {
		id, secret, ok := ParseBasic(tc.header)
		if id != tc.id || secret != tc.secret || ok != tc.ok {
			t.Errorf("ParseBasic(%q) = %q, %q, %v; want %q, %q, %v", tc.header, id, secret, ok, tc.id, tc.secret, tc.ok)
		}
	}
}

func FuzzParseBasic(f *testing.F) {
	f.Add(basic("mobile", "mobile-secret"))
	f.Add(basic("my client:1", "s&cr:t%"))
	f.Add("Basic %%%")
	f.Add("Basic Og==")
	f.Add("basic ")
	f.Fuzz(func(t *testing.T, header string) {
		id, secret, ok := ParseBasic(header)
		if !ok {
			if id != "" || secret != "" {
				t.Fatal("values returned with !ok")
			}
			return
		}
		if len(id) > MaxCredentialLength || len(secret) > MaxCredentialLength || hasControl(id) || hasControl(secret) {
			t.Fatalf("accepted %q %q", id, secret)
		}
		// What parses round-trips through the encoding clients use.
		id2, secret2, ok2 := ParseBasic(basic(id, secret))
		if !ok2 || id2 != id || secret2 != secret {
			t.Fatalf("round trip of %q %q gave %q %q %v", id, secret, id2, secret2, ok2)
		}
	})
}

// fuzzedRequest is a POST with header as its Authorization (none when empty)
// and body parsed as its form; ok is false when body does not parse.
func fuzzedRequest(header, body string) (r *http.Request, form url.Values, ok bool) {
	form, err := url.ParseQuery(body)
	if err != nil {
		return nil, nil, false
	}
	r = httptest.NewRequest("POST", "/", nil)
	if header != "" {
		r.Header.Set("Authorization", header)
	}
	return r, form, true
}

func FuzzAuthenticate(f *testing.F) {
	snap := snapshot(f)
	f.Add(basic("mobile", "new-secret"), "client_id=mobile")
	f.Add("", "client_id=mobile&client_secret=new-secret")
	f.Add("Basic Og==", "client_secret=x")
	f.Fuzz(func(t *testing.T, header, body string) {
		r, form, ok := fuzzedRequest(header, body)
		if !ok {
			return
		}
		c, _, err := AuthenticateAt(r, form, snap, now)
		if (c == nil) == (err == nil) {
			t.Fatalf("client %v with error %v", c, err)
		}
		var e *Error
		if err != nil && !errors.As(err, &e) {
			t.Fatalf("untyped error %v", err)
		}
	})
}
