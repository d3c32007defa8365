package httpx

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// reference is what ParseForm did before parseForm: url.ParseQuery, then ValidText.
func reference(body string) (url.Values, error) {
	v, err := url.ParseQuery(body)
	if err != nil || !ValidText(v) {
		return nil, ErrMalformed
	}
	return v, nil
}

func TestParseForm(t *testing.T) {
	for _, c := range []struct {
		name, body string
		want       url.Values // nil: ErrMalformed
	}{
		{"empty", "", url.Values{}},
		{"token request", "grant_type=client_credentials&client_id=c&client_secret=s",
			url.Values{"grant_type": {"client_credentials"}, "client_id": {"c"}, "client_secret": {"s"}}},
		{"percent-encoding", "client_id=a%2Bb%20c&client_secret=%C3%A9%3D%26", url.Values{"client_id": {"a+b c"}, "client_secret": {"é=&"}}},
		{"encoded key", "client%5Fid=x", url.Values{"client_id": {"x"}}},
		{"plus is a space", "scope=read+write", url.Values{"scope": {"read write"}}},
		{"upper and lower hex", "a=%2f%2F", url.Values{"a": {"//"}}},
		{"no value", "a&b=", url.Values{"a": {""}, "b": {""}}},
		{"empty key", "=v", url.Values{"": {"v"}}},
		{"second = is in the value", "a=b=c", url.Values{"a": {"b=c"}}},
		{"empty pairs skipped", "&&a=1&&", url.Values{"a": {"1"}}},
		{"repeated keeps both values", "a=1&b=2&a=3", url.Values{"a": {"1", "3"}, "b": {"2"}}},
		{"repeated after encoding", "a=1&%61=2", url.Values{"a": {"1", "2"}}},
		{"repeated empty", "a&a", url.Values{"a": {"", ""}}},
		{"bad escape", "a=%zz", nil},
		{"truncated escape", "a=%4", nil},
		{"lone percent", "a=%", nil},
		{"bad escape in key", "%g0=1", nil},
		{"bad escape after a good pair", "a=1&b=%", nil},
		{"semicolon", "a=1;b=2", nil},
		{"encoded semicolon is fine", "a=1%3Bb", url.Values{"a": {"1;b"}}},
		{"NUL", "a=%00", nil},
		{"NUL in key", "%00=a", nil},
		{"raw NUL", "a=b\x00", nil},
		{"invalid UTF-8", "a=%ff", nil},
		{"raw invalid UTF-8", "a=\xff", nil},
		{"invalid UTF-8 in key", "%c3=a", nil},
		{"too many parameters", strings.Repeat("&", maxFormParams), nil},
		{"as many parameters as allowed", strings.Repeat("&", maxFormParams-1) + "a=1", url.Values{"a": {"1"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseForm(c.body)
			if c.want == nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("got %v, %v; want ErrMalformed", got, err)
				}
			} else if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v, %v; want %v", got, err, c.want)
			}
			ref, refErr := reference(c.body)
			if (err == nil) != (refErr == nil) || (err == nil && !reflect.DeepEqual(got, ref)) {
				t.Fatalf("got %v, %v; url.ParseQuery and ValidText give %v, %v", got, err, ref, refErr)
			}
		})
	}
}

// TestParseFormSingle: a repeated parameter is still refused by Single, and
// the values of one form do not overwrite each other (they share a backing
// array).
func TestParseFormSingle(t *testing.T) {
	form, err := parseForm("a=1&b=2&a=3&c=4")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Single(form, "a"); !errors.Is(err, ErrRepeated) {
		t.Errorf("Single(a) = %v, want ErrRepeated", err)
	}
	form["b"] = append(form["b"], "x")
	form.Add("c", "y")
	if b, c := form["b"], form["c"]; !reflect.DeepEqual(b, []string{"2", "x"}) || !reflect.DeepEqual(c, []string{"4", "y"}) {
		t.Errorf("b = %q, c = %q", b, c)
	}
}

func TestParseFormRequest(t *testing.T) {
	req := func(ct, body string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/token?a=query", strings.NewReader(body))
		r.Header.Set("Content-Type", ct)
		return r
	}
	if v, err := ParseForm(req(FormMediaType, "a=body")); err != nil || !reflect.DeepEqual(v, url.Values{"a": {"body"}}) {
		t.Errorf("got %v, %v; want the body's a only", v, err)
	}
	if _, err := ParseForm(req("application/json", "a=body")); !errors.Is(err, ErrMediaType) {
		t.Errorf("JSON media type: %v, want ErrMediaType", err)
	}
	if _, err := ParseForm(req(FormMediaType, "a=%zz")); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad escape: %v, want ErrMalformed", err)
	}
	big := req(FormMediaType, "a="+strings.Repeat("x", MaxBody))
	big.Body = http.MaxBytesReader(httptest.NewRecorder(), big.Body, MaxBody)
	if _, err := ParseForm(big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("body over MaxBody: %v, want ErrTooLarge", err)
	}
	// The pooled buffer of the large body is reused; the next body is its own.
	if v, err := ParseForm(req(FormMediaType, "b=2")); err != nil || !reflect.DeepEqual(v, url.Values{"b": {"2"}}) {
		t.Errorf("after a large body: %v, %v", v, err)
	}
}

// FuzzParseForm: parseForm answers exactly as url.ParseQuery followed by
// ValidText (what ParseForm did before).
func FuzzParseForm(f *testing.F) {
	for _, s := range []string{"", "grant_type=client_credentials&client_id=c&client_secret=s", "a=1&a=2", "a=%zz", "a;b",
		"a=%00", "%ff=1", "a+b=c+d&&=", "client_id=%E2%82%AC&x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		got, err := parseForm(body)
		want, wantErr := reference(body)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("%q: error %v, url.ParseQuery and ValidText: %v", body, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: %v, url.ParseQuery: %v", body, got, want)
		}
	})
}
