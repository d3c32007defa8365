package saauth

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
)

// jws builds a compact JWS with the given header and claims and a dummy
// signature: the parser never checks signatures (the API server does).
func jws(t testing.TB, header, claims any) string {
	t.Helper()
	enc := func(v any) string {
		var b []byte
		switch v := v.(type) {
		case string:
			b = []byte(v)
		default:
			var err error
			if b, err = json.Marshal(v); err != nil {
				t.Fatal(err)
			}
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(header) + "." + enc(claims) + "." + base64.RawURLEncoding.EncodeToString([]byte("signature"))
}

var rs256 = map[string]string{"alg": "RS256", "kid": "k"}

func saClaims() map[string]any {
	return map[string]any{
		"iss": "https://kubernetes.default.svc", "sub": "system:serviceaccount:apps:billing",
		"aud": []string{"https://tokens.example"}, "exp": 1767225600, "nbf": 1767222000, "iat": 1767222000,
		"kubernetes.io": map[string]any{"namespace": "apps", "serviceaccount": map[string]string{"name": "billing", "uid": "u1"},
			"pod": map[string]string{"name": "billing-7f9c", "uid": "p1"}},
	}
}

func with(kv ...any) map[string]any {
	c := saClaims()
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

func TestParseReadsAServiceAccountToken(t *testing.T) {
	a, err := Parse(jws(t, rs256, saClaims()))
	if err != nil {
		t.Fatal(err)
	}
	if a.Namespace != "apps" || a.ServiceAccount != "billing" || a.PodName != "billing-7f9c" || a.Issuer != "https://kubernetes.default.svc" {
		t.Errorf("got %+v", a)
	}
	if a.Subject() != "system:serviceaccount:apps:billing" || len(a.Audiences) != 1 || a.Audiences[0] != "https://tokens.example" {
		t.Errorf("got %+v", a)
	}
	if !a.Expiry.Equal(time.Unix(1767225600, 0)) || !a.NotBefore.Equal(time.Unix(1767222000, 0)) || !a.IssuedAt.Equal(time.Unix(1767222000, 0)) {
		t.Errorf("times %v %v %v", a.Expiry, a.NotBefore, a.IssuedAt)
	}
	a, err = Parse(jws(t, map[string]string{"alg": "ES256"}, with("aud", "https://tokens.example", "kubernetes.io", nil, "nbf", nil, "iat", nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Audiences) != 1 || a.PodName != "" || !a.NotBefore.IsZero() {
		t.Errorf("a string aud, no pod, no nbf: got %+v", a)
	}
}

func TestParseRefusesWhatIsNotAServiceAccountToken(t *testing.T) {
	good := jws(t, rs256, saClaims())
	parts := strings.Split(good, ".")
	for _, tc := range []struct {
		name, raw, reason string
	}{
		{"refuses an empty assertion", "", ReasonMalformed},
		{"refuses two parts", parts[0] + "." + parts[1], ReasonMalformed},
		{"refuses four parts", good + ".x", ReasonMalformed},
		{"refuses an empty signature", parts[0] + "." + parts[1] + ".", ReasonMalformed},
		{"refuses padding in base64url", parts[0] + "=." + parts[1] + "." + parts[2], ReasonMalformed},
		{"refuses a header that is not JSON", "bm90anNvbg." + parts[1] + "." + parts[2], ReasonMalformed},
		{"refuses alg none", jws(t, map[string]string{"alg": "none"}, saClaims()), ReasonMalformed},
		{"refuses an HMAC alg", jws(t, map[string]string{"alg": "HS256"}, saClaims()), ReasonMalformed},
		{"refuses trailing data after the claims", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"x"} {}`)) + "." + parts[2], ReasonMalformed},
		{"refuses a claims array", jws(t, rs256, []int{1}), ReasonMalformed},
		{"refuses a user's sub", jws(t, rs256, with("sub", "alice")), ReasonNotServiceAcc},
		{"refuses a sub with a colon in the name", jws(t, rs256, with("sub", "system:serviceaccount:apps:a:b")), ReasonNotServiceAcc},
		{"refuses an upper-case namespace", jws(t, rs256, with("sub", "system:serviceaccount:Apps:billing")), ReasonNotServiceAcc},
		{"refuses a dotted namespace", jws(t, rs256, with("sub", "system:serviceaccount:a.b:billing")), ReasonNotServiceAcc},
		{"refuses an empty name", jws(t, rs256, with("sub", "system:serviceaccount:apps:")), ReasonNotServiceAcc},
		{"refuses a missing aud", jws(t, rs256, with("aud", nil)), ReasonMalformed},
		{"refuses an empty aud", jws(t, rs256, with("aud", []string{})), ReasonMalformed},
		{"refuses a numeric aud", jws(t, rs256, with("aud", 7)), ReasonMalformed},
		{"refuses a missing exp", jws(t, rs256, with("exp", nil)), ReasonMalformed},
		{"refuses a string exp", jws(t, rs256, with("exp", "1767225600")), ReasonMalformed},
		{"refuses a negative nbf", jws(t, rs256, with("nbf", -1)), ReasonMalformed},
		{"refuses an exp after year 9999", jws(t, rs256, with("exp", 1e12)), ReasonMalformed},
		{"refuses an oversized assertion", good + strings.Repeat("A", MaxAssertionLength), ReasonTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Parse(tc.raw)
			if err == nil || ReasonOf(err) != tc.reason {
				t.Fatalf("got %+v, %v; want reason %s", a, err, tc.reason)
			}
		})
	}
}

func TestFromForm(t *testing.T) {
	for _, tc := range []struct {
		name    string
		form    url.Values
		present bool
		reason  string
	}{
		{"is absent without either parameter", url.Values{"client_id": {"x"}}, false, ""},
		{"takes both parameters", url.Values{ParamAssertionType: {AssertionType}, ParamAssertion: {"a.b.c"}}, true, ""},
		{"refuses an assertion without its type", url.Values{ParamAssertion: {"a.b.c"}}, true, ReasonMalformed},
		{"refuses a type without an assertion", url.Values{ParamAssertionType: {AssertionType}}, true, ReasonMalformed},
		{"refuses another assertion type", url.Values{ParamAssertionType: {"urn:ietf:params:oauth:client-assertion-type:saml2-bearer"}, ParamAssertion: {"a.b.c"}}, true, ReasonMalformed},
		{"refuses a repeated assertion", url.Values{ParamAssertionType: {AssertionType}, ParamAssertion: {"a.b.c", "d.e.f"}}, true, ReasonMalformed},
		{"refuses an empty assertion", url.Values{ParamAssertionType: {AssertionType}, ParamAssertion: {""}}, true, ReasonMalformed},
		{"refuses an oversized assertion before reading it", url.Values{ParamAssertionType: {AssertionType}, ParamAssertion: {strings.Repeat("a", MaxAssertionLength+1)}}, true, ReasonTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, present, err := FromForm(tc.form)
			if present != tc.present || ReasonOf(err) != tc.reason {
				t.Errorf("got present=%v err=%v; want present=%v reason %q", present, err, tc.present, tc.reason)
			}
		})
	}
}

// FuzzParse: Parse never panics, and whatever it accepts is a well-formed
// ServiceAccount identity within the size bound.
func FuzzParse(f *testing.F) {
	f.Add(jws(f, rs256, saClaims()))
	f.Add(jws(f, map[string]string{"alg": "ES256"}, with("aud", "x", "exp", 1.5)))
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		a, err := Parse(raw)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		if len(raw) > MaxAssertionLength || a.Namespace == "" || a.ServiceAccount == "" || len(a.Audiences) == 0 || a.Expiry.IsZero() {
			t.Fatalf("accepted %q as %+v", raw, a)
		}
		if strings.Count(a.Subject(), ":") != 3 {
			t.Fatalf("subject %q", a.Subject())
		}
	})
}

// FuzzFromForm: any body, parsed as the endpoints parse it, gives a bounded
// assertion or a typed refusal.
func FuzzFromForm(f *testing.F) {
	f.Add("client_assertion_type=" + url.QueryEscape(AssertionType) + "&client_assertion=a.b.c")
	f.Add("client_assertion=x&client_assertion=y")
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		a, present, err := FromForm(form)
		if err != nil && ReasonOf(err) == "" {
			t.Fatalf("error %v is not an *Error", err)
		}
		if err == nil && present && (a == "" || len(a) > MaxAssertionLength) {
			t.Fatalf("accepted %d bytes", len(a))
		}
	})
}
