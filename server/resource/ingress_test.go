package resource

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/tokensmith/tokensmith/server/tokens"
)

// ingress behaves like ingress-nginx with auth-url and auth-response-headers:
// it asks authURL about every request, passing the original Authorization,
// and forwards to the backend only on 2xx, copying the X-Auth-* headers (and
// dropping any the client sent itself).
func ingress(t *testing.T, authURL string, backend *url.URL) http.Handler {
	t.Helper()
	proxy := httputil.NewSingleHostReverseProxy(backend)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range []string{HeaderSubject, HeaderClient, HeaderScopes} {
			r.Header.Del(h)
		}
		check, err := http.NewRequestWithContext(r.Context(), http.MethodGet, authURL, nil)
		if err != nil {
			t.Error(err)
			return
		}
		check.Header.Set("Authorization", r.Header.Get("Authorization"))
		check.Header.Set("X-Original-URI", r.URL.RequestURI())
		res, err := http.DefaultClient.Do(check)
		if err != nil {
			http.Error(w, "auth service unavailable", http.StatusInternalServerError)
			return
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		if res.StatusCode/100 != 2 {
			if c := res.Header.Get("WWW-Authenticate"); c != "" {
				w.Header().Set("WWW-Authenticate", c)
			}
			w.WriteHeader(res.StatusCode)
			return
		}
		for _, h := range []string{HeaderSubject, HeaderClient, HeaderScopes} {
			r.Header.Set(h, res.Header.Get(h))
		}
		proxy.ServeHTTP(w, r)
	})
}

func TestIngressForwardAuth(t *testing.T) {
	f := newFixture(t)
	auth := httptest.NewServer(f.handler)
	defer auth.Close()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.Header.Get(HeaderSubject)+" via "+r.Header.Get(HeaderClient)+" with "+r.Header.Get(HeaderScopes))
	}))
	defer backend.Close()
	backendURL, _ := url.Parse(backend.URL)
	edge := httptest.NewServer(ingress(t, auth.URL+PathVerify+"?scope=read", backendURL))
	defer edge.Close()

	access, refresh := f.userTokens("sid-1")
	writeOnly := f.clientToken(func(c *tokens.Claims) { c.Scope = []string{"write"} })
	cases := []struct {
		name      string
		auth      string
		forged    string
		status    int
		body      string
		challenge string
	}{
		{"forwards a request with a valid token, naming its user", "Bearer " + access, "", 200, "hello alice via mobile with read write", ""},
		{"replaces identity headers the client forged", "Bearer " + access, "root", 200, "hello alice via mobile with read write", ""},
		{"stops a request without a token", "", "root", 401, "", "Bearer"},
		{"stops a refresh token", "Bearer " + refresh, "", 401, "", `Bearer error="invalid_token"`},
		{"stops a token without the route's scope", "Bearer " + writeOnly, "", 403, "", `Bearer error="insufficient_scope", scope="read"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", edge.URL+"/api/things", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			if tc.forged != "" {
				req.Header.Set(HeaderSubject, tc.forged)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status || string(b) != tc.body || res.Header.Get("WWW-Authenticate") != tc.challenge {
				t.Fatalf("got %d %q %q, want %d %q %q", res.StatusCode, b, res.Header.Get("WWW-Authenticate"), tc.status, tc.body, tc.challenge)
			}
		})
	}
}
