package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/index"
	st "github.com/tokensmith/tokensmith/server/internal/servertest"
	"github.com/tokensmith/tokensmith/server/login"
)

// BenchmarkHandler measures one request through the whole handler chain
// (request id, metrics, routing, the dialect, client authentication, minting,
// JSON) without a network: CPU and allocations per request, the server's
// share of what make bench measures over loopback. "trivial" is the bench's
// baseline handler, for scale.
//
//	go test ./server -run '^$' -bench Handler -benchmem
func BenchmarkHandler(b *testing.B) {
	digest := func(p, s string) credstore.Digest { return credstore.DigestOf(p, s) }
	snap := st.Snapshot(b, []credstore.ClientVerifier{
		{ClientID: "jwt-client", NumericID: 1, GrantTypes: []string{"client_credentials", "session"}, Scopes: []string{"read"}, TokenFormat: "jwt",
			Secrets: []credstore.SecretDigests{{ClientSecret: digest(credstore.PurposeClientSecret, "jwt-secret"),
				APIKey: st.Digest(credstore.PurposeAPIKey, "api-key"), APISecret: st.Digest(credstore.PurposeAPISecret, "api-secret")}}},
		{ClientID: "opaque-client", GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}, TokenFormat: "opaque",
			Secrets: []credstore.SecretDigests{{ClientSecret: digest(credstore.PurposeClientSecret, "opaque-secret")}}},
	}, nil, st.Keys(b))
	s, err := New(Options{Snapshot: func() *index.Snapshot { return snap }, Issuer: issuer, Login: login.Options{DummyParams: &st.Cheap}, RateLimits: NoRateLimits()})
	if err != nil {
		b.Fatal(err)
	}
	form := "application/x-www-form-urlencoded"
	trivial := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	})
	for _, c := range []struct {
		name, path, ct, body string
		h                    http.Handler
	}{
		{"trivial", "/trivial", "", "", trivial},
		{"v1-client-credentials-ES256", "/v1/auth/token", form, "client_id=jwt-client&client_secret=jwt-secret", s.Handler()},
		{"v1-client-credentials-opaque", "/v1/auth/token", form, "client_id=opaque-client&client_secret=opaque-secret", s.Handler()},
		{"oauth2-client-credentials-ES256", "/oauth/token", form, "grant_type=client_credentials&client_id=jwt-client&client_secret=jwt-secret", s.Handler()},
		{"oauth2-client-credentials-opaque", "/oauth/token", form, "grant_type=client_credentials&client_id=opaque-client&client_secret=opaque-secret", s.Handler()},
		{"session-HS512", "/api/auth/session/1", "application/json", `{"api_key":"api-key","secret":"api-secret"}`, s.Handler()},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, c.path, strings.NewReader(c.body))
				if c.ct != "" {
					req.Header.Set("Content-Type", c.ct)
				}
				rec := httptest.NewRecorder()
				c.h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", c.name, rec.Code, rec.Body)
				}
			}
		})
	}
}
