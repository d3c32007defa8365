package resource

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzVerify: any Authorization header and scope parameter gets 200, 400,
// 401 or 403 from /auth/verify, never a 500 or a panic.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	tok := fx.clientToken(nil)
	f.Add("Bearer "+tok, "read")
	f.Add("Bearer ", "")
	f.Add("bearer a.b.c", "a\"b")
	f.Add("Basic Og==", "%zz")
	f.Fuzz(func(t *testing.T, auth, scope string) {
		r := httptest.NewRequest("GET", "/auth/verify", nil)
		r.URL.RawQuery = "scope=" + scope
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		fx.handler.ServeHTTP(w, r)
		switch w.Code {
		case 200, 400, 401, 403:
		default:
			t.Fatalf("status %d", w.Code)
		}
		if w.Code == 200 && w.Header().Get(HeaderClient) == "" {
			t.Fatal("admitted without a client")
		}
	})
}

// FuzzIntrospect: any form body and Authorization header gets a 2xx or 4xx.
func FuzzIntrospect(f *testing.F) {
	fx := newFixture(f)
	tok := fx.clientToken(nil)
	f.Add("token="+tok, basic("rs", "rs-secret"))
	f.Add("token="+tok+"&client_id=rs&client_secret=rs-secret", "")
	f.Add("token=%zz", "Basic %%%")
	f.Fuzz(func(t *testing.T, body, auth string) {
		for _, path := range []string{PathIntrospect, PathRevoke} {
			r := httptest.NewRequest("POST", path, strings.NewReader(body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Authorization", auth)
			w := httptest.NewRecorder()
			fx.handler.ServeHTTP(w, r)
			if w.Code >= http.StatusInternalServerError {
				t.Fatalf("%s: status %d %s", path, w.Code, w.Body)
			}
		}
	})
}
