package httpx

import (
	"net/http/httptest"
	"testing"
	"time"
)

func TestSetRetryAfterRoundsUpToWholeSecondsOfAtLeastOne(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                       "1",
		time.Nanosecond:         "1",
		500 * time.Millisecond:  "1",
		time.Second:             "1",
		time.Second + 1:         "2",
		2500 * time.Millisecond: "3",
		time.Hour:               "3600",
	} {
		w := httptest.NewRecorder()
		SetRetryAfter(w, d)
		if got := w.Header().Get("Retry-After"); got != want {
			t.Errorf("SetRetryAfter(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestValidTextRefusesInvalidUTF8AndNUL(t *testing.T) {
	cases := []struct {
		name string
		v    map[string][]string
		want bool
	}{
		{"accepts UTF-8 text", map[string][]string{"username": {"zoë@example.com"}}, true},
		{"refuses invalid UTF-8 in a value", map[string][]string{"username": {"a\xffb"}}, false},
		{"refuses invalid UTF-8 in a key", map[string][]string{"user\xff": {"a"}}, false},
		{"refuses a NUL byte", map[string][]string{"password": {"ok", "a\x00"}}, false},
	}
	for _, c := range cases {
		if got := ValidText(c.v); got != c.want {
			t.Errorf("%s: got %v", c.name, got)
		}
	}
}
