package clientauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/index"
	"github.com/tokensmith/tokensmith/server/saauth"
)

// reviewer stands in for the API server here: it authenticates every token
// as the ServiceAccount its sub claims, or answers nothing while down. The
// real TokenReview path is tested in saauth/tokenreview and test/e2e.
type reviewer struct {
	down  bool
	calls atomic.Int64
}

func (f *reviewer) Review(_ context.Context, token, audience string) (saauth.Review, error) {
	f.calls.Add(1)
	if f.down {
		return saauth.Review{}, errors.New("connection refused")
	}
	a, err := saauth.Parse(token)
	if err != nil {
		return saauth.Review{}, nil //nolint:nilerr // an unreadable token is the API server's "not authenticated", not a failure to answer
	}
	return saauth.Review{Authenticated: true, Username: a.Subject(), Audiences: []string{audience}}, nil
}

const audience = "https://tokens.example"

func saToken(t testing.TB, namespace, name string, change map[string]any) string {
	t.Helper()
	claims := map[string]any{"iss": "https://kubernetes.default.svc", "sub": "system:serviceaccount:" + namespace + ":" + name,
		"aud": []string{audience}, "exp": now.Add(10 * time.Minute).Unix(), "iat": now.Unix(), "nbf": now.Unix()}
	for k, v := range change {
		claims[k] = v
	}
	h, _ := json.Marshal(map[string]string{"alg": "RS256"})
	p, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p) + ".c2ln"
}

func assertionSnapshot(t testing.TB) *index.Snapshot {
	t.Helper()
	s, err := index.NewSnapshot([]credstore.ClientVerifier{
		{Namespace: "apps", ClientID: "reports", ServiceAccountName: "reports"},
		{Namespace: "apps", ClientID: "shared-1", ServiceAccountName: "shared"},
		{Namespace: "apps", ClientID: "shared-2", ServiceAccountName: "shared"},
		{Namespace: "apps", ClientID: "mobile", Secrets: []credstore.SecretDigests{{ClientSecret: digest("new-secret")}}},
	}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func assertionForm(token string, kv ...string) url.Values {
	f := url.Values{saauth.ParamAssertionType: {saauth.AssertionType}, saauth.ParamAssertion: {token}}
	for i := 0; i < len(kv); i += 2 {
		f.Add(kv[i], kv[i+1])
	}
	return f
}

func TestAssertions(t *testing.T) {
	snap := assertionSnapshot(t)
	good := saToken(t, "apps", "reports", nil)
	for _, tc := range []struct {
		name, header string
		form         url.Values
		want         string // client id, or "" for a refusal
		code         string
		reviewed     bool // whether the API server was asked
	}{
		{name: "authenticates the client that binds the ServiceAccount", form: assertionForm(good), want: "reports", reviewed: true},
		{name: "takes a client_id that names it", form: assertionForm(good, "client_id", "reports"), want: "reports", reviewed: true},
		{name: "picks among clients sharing a ServiceAccount by client_id", form: assertionForm(saToken(t, "apps", "shared", nil), "client_id", "shared-2"), want: "shared-2", reviewed: true},
		{name: "refuses a ServiceAccount bound to several clients without a client_id", form: assertionForm(saToken(t, "apps", "shared", nil)), code: CodeInvalidClient},
		{name: "refuses a client_id naming another client", form: assertionForm(good, "client_id", "mobile"), code: CodeInvalidClient},
		{name: "refuses a ServiceAccount bound to no client", form: assertionForm(saToken(t, "apps", "stranger", nil)), code: CodeInvalidClient},
		{name: "refuses the same name in another namespace", form: assertionForm(saToken(t, "other", "reports", nil)), code: CodeInvalidClient},
		{name: "refuses another audience", form: assertionForm(saToken(t, "apps", "reports", map[string]any{"aud": "https://kubernetes.default.svc"})), code: CodeInvalidClient},
		{name: "refuses an expired token", form: assertionForm(saToken(t, "apps", "reports", map[string]any{"exp": now.Unix()})), code: CodeInvalidClient},
		{name: "refuses a token not yet valid", form: assertionForm(saToken(t, "apps", "reports", map[string]any{"nbf": now.Unix() + 3600})), code: CodeInvalidClient},
		{name: "refuses a malformed assertion", form: assertionForm("not.a.jwt"), code: CodeInvalidClient},
		{name: "refuses an oversized assertion", form: assertionForm(good + strings.Repeat("A", saauth.MaxAssertionLength)), code: CodeInvalidClient},
		{name: "refuses another assertion type", form: url.Values{saauth.ParamAssertionType: {"urn:other"}, saauth.ParamAssertion: {good}}, code: CodeInvalidClient},
		{name: "refuses an assertion without its type", form: url.Values{saauth.ParamAssertion: {good}}, code: CodeInvalidClient},
		{name: "refuses an assertion with a client_secret", form: assertionForm(good, "client_id", "mobile", "client_secret", "new-secret"), code: CodeInvalidClient},
		{name: "refuses an assertion with HTTP Basic", header: basic("mobile", "new-secret"), form: assertionForm(good), code: CodeInvalidClient},
		{name: "refuses a repeated client_id", form: assertionForm(good, "client_id", "reports", "client_id", "reports"), code: CodeInvalidRequest},
		{name: "still takes a client secret without an assertion", form: url.Values{"client_id": {"mobile"}, "client_secret": {"new-secret"}}, want: "mobile"},
		{name: "never takes a client of a ServiceAccount by a secret it does not have", form: url.Values{"client_id": {"reports"}, "client_secret": {""}}, code: CodeInvalidClient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rv := &reviewer{}
			v := saauth.NewVerifier(saauth.Config{Audience: audience, Reviewer: rv, Now: func() time.Time { return now }})
			r := httptest.NewRequest("POST", "/", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			c, _, err := AuthenticateWith(r, tc.form, snap, now, v)
			var e *Error
			switch {
			case tc.want != "" && (err != nil || c.ClientID != tc.want):
				t.Fatalf("got %v, %v; want client %s", c, err, tc.want)
			case tc.want == "" && (!errors.As(err, &e) || e.Code != tc.code):
				t.Fatalf("got %v, %v; want %s", c, err, tc.code)
			}
			if got := rv.calls.Load() > 0; got != tc.reviewed {
				t.Errorf("reviewed = %v, want %v: only bound, locally valid assertions may cost a TokenReview", got, tc.reviewed)
			}
		})
	}
}

func TestAnAssertionDuringAnOutageIsUnavailableNotInvalid(t *testing.T) {
	v := saauth.NewVerifier(saauth.Config{Audience: audience, Reviewer: &reviewer{down: true}, Now: func() time.Time { return now }})
	_, _, err := AuthenticateWith(httptest.NewRequest("POST", "/", nil), assertionForm(saToken(t, "apps", "reports", nil)), assertionSnapshot(t), now, v)
	var e *Error
	if !errors.As(err, &e) || !e.Unavailable() || e.Status != 503 {
		t.Fatalf("got %v", err)
	}
}

func TestWithoutAVerifierAssertionsAreRefused(t *testing.T) {
	_, _, err := AuthenticateWith(httptest.NewRequest("POST", "/", nil), assertionForm(saToken(t, "apps", "reports", nil)), assertionSnapshot(t), now, nil)
	var e *Error
	if !errors.As(err, &e) || !e.InvalidClient() {
		t.Fatalf("got %v", err)
	}
}

func TestPresentedID(t *testing.T) {
	for _, tc := range []struct {
		header string
		form   url.Values
		want   string
	}{
		{basic("mobile", "x"), nil, "mobile"},
		{"", url.Values{"client_id": {"mobile"}}, "mobile"},
		{"", assertionForm(saToken(t, "apps", "reports", nil)), "system:serviceaccount:apps:reports"},
		{"", assertionForm(saToken(t, "apps", "reports", nil), "client_id", "reports"), "reports"},
		{"", assertionForm("garbage"), ""},
	} {
		r := httptest.NewRequest("POST", "/", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		v := saauth.NewVerifier(saauth.Config{Audience: audience, Reviewer: &reviewer{}})
		if got := PresentedID(r, tc.form, v); got != tc.want {
			t.Errorf("PresentedID = %q, want %q", got, tc.want)
		}
	}
}

// FuzzAuthenticateWith: any header and body, with assertions on, gives a
// client or a typed error, never a panic, and a client only as documented.
func FuzzAuthenticateWith(f *testing.F) {
	snap := assertionSnapshot(f)
	v := saauth.NewVerifier(saauth.Config{Audience: audience, Reviewer: &reviewer{}, Now: func() time.Time { return now }})
	f.Add("", assertionForm(saToken(f, "apps", "reports", nil)).Encode())
	f.Add(basic("mobile", "new-secret"), assertionForm("a.b.c").Encode())
	f.Add("", "client_id=mobile&client_secret=new-secret")
	f.Fuzz(func(t *testing.T, header, body string) {
		r, form, ok := fuzzedRequest(header, body)
		if !ok {
			return
		}
		c, _, err := AuthenticateWith(r, form, snap, now, v)
		var e *Error
		if err != nil && !errors.As(err, &e) {
			t.Fatalf("untyped error %v", err)
		}
		if c != nil && c.ServiceAccountName != "" && (len(form[saauth.ParamAssertion]) != 1 || header != "") {
			t.Fatalf("a ServiceAccount client authenticated without exactly one assertion: %q %q", header, body)
		}
	})
}
