package oauth2

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tokensmith/tokensmith/server/internal/httpx"
)

// TestResponseAppendJSON: the token answer is byte for byte what
// encoding/json wrote for it (WriteJSON used it before), odd strings included.
func TestResponseAppendJSON(t *testing.T) {
	for _, r := range []response{
		{TokenType: "Bearer", ExpiresIn: 3600, AccessToken: "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln"},
		{TokenType: "Bearer", ExpiresIn: 31622400, AccessToken: "tsa_AbC-_09", RefreshToken: "tsr_xyz"},
		{TokenType: "", ExpiresIn: 0, AccessToken: ""},
		{TokenType: "<&>\"\\\n\x00\u2028", ExpiresIn: -1, AccessToken: "\xff\xfeé", RefreshToken: "\u2029\t"},
	} {
		want, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.AppendJSON([]byte("prefix")); string(got) != "prefix"+string(want) {
			t.Errorf("AppendJSON = %s, encoding/json: %s", got, want)
		}
		rec := httptest.NewRecorder()
		httpx.WriteJSON(rec, http.StatusOK, &r)
		if rec.Body.String() != string(want)+"\n" || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("WriteJSON wrote %q (%s), want %q", rec.Body, rec.Header().Get("Content-Type"), string(want)+"\n")
		}
	}
}

// FuzzResponseAppendJSON compares AppendJSON with encoding/json for any strings.
func FuzzResponseAppendJSON(f *testing.F) {
	f.Add("Bearer", int64(3600), "tsa_x", "")
	f.Add("<>&", int64(-5), "\xff\u2028", "\"\\")
	f.Fuzz(func(t *testing.T, typ string, exp int64, access, refresh string) {
		r := response{TokenType: typ, ExpiresIn: exp, AccessToken: access, RefreshToken: refresh}
		want, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("AppendJSON = %s, encoding/json: %s", got, want)
		}
	})
}
