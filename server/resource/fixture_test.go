package resource

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/internal/keyset"
	"github.com/tokensmith/tokensmith/server/index"
	st "github.com/tokensmith/tokensmith/server/internal/servertest"
	"github.com/tokensmith/tokensmith/server/tokens"
)

const issuer = "https://auth.example.test"

var now = st.Now

// fixture is a resource server over a snapshot that a fake revoker updates.
type fixture struct {
	t       testing.TB
	keys    *keyset.Set
	kr      *tokens.Keyring
	mu      sync.Mutex
	revs    []credstore.Revocation
	snap    *index.Snapshot
	handler http.Handler
	failing bool // the revoker fails
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, keys: st.Keys(t)}
	f.rebuild()
	f.kr = f.snap.Keyring()
	f.handler = st.Mount(New(Options{Snapshot: f.snapshot, Issuer: issuer, Now: func() time.Time { return now }, Revoker: f}).Mount)
	return f
}

func (f *fixture) rebuild() {
	s, err := index.NewSnapshot(st.ResourceClients(), st.ResourceUsers(true), f.keys, f.revs)
	if err != nil {
		f.t.Fatal(err)
	}
	f.snap = s
}

func (f *fixture) snapshot() *index.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap
}

// Revoke implements Revoker in memory.
func (f *fixture) Revoke(_ context.Context, r credstore.Revocation) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing {
		return errors.New("api server unreachable")
	}
	f.revs = append(f.revs, r)
	f.rebuild()
	return nil
}

func (f *fixture) revocations() []credstore.Revocation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]credstore.Revocation(nil), f.revs...)
}

func (f *fixture) mint(c *tokens.Claims, format tokens.Format, prefix string) string {
	f.t.Helper()
	if c.Issuer == "" {
		c.Issuer = issuer
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = now.Add(-time.Minute)
	}
	if c.ExpiresAt.IsZero() {
		c.ExpiresAt = now.Add(time.Hour)
	}
	tok, err := f.kr.Mint(c, format, prefix)
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

// clientToken is an ES256 client-credentials access token of svc.
func (f *fixture) clientToken(mod func(*tokens.Claims)) string {
	c := &tokens.Claims{Kind: tokens.Access, Subject: "svc", ClientID: "svc", Scope: []string{"read"}, ID: "jti-svc"}
	if mod != nil {
		mod(c)
	}
	return f.mint(c, tokens.FormatES256, "")
}

// userTokens are an access and a refresh token of one alice session on mobile.
func (f *fixture) userTokens(sid string) (access, refresh string) {
	a := &tokens.Claims{Kind: tokens.Access, Subject: "alice", ClientID: "mobile", Scope: []string{"read", "write"}, SessionID: sid, Generation: 1, ID: "at-" + sid}
	r := &tokens.Claims{Kind: tokens.Refresh, Subject: "alice", ClientID: "mobile", Scope: []string{"read", "write"}, SessionID: sid, Generation: 1, ID: "rt-" + sid,
		ExpiresAt: now.Add(24 * time.Hour)}
	return f.mint(a, tokens.FormatES256, ""), f.mint(r, tokens.FormatOpaque, tokens.PrefixRefresh)
}

type response struct {
	status int
	header http.Header
	body   string
}

func (f *fixture) do(r *http.Request) response {
	f.t.Helper()
	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return response{w.Code, w.Result().Header, string(b)}
}

func form(kv ...string) string { return st.Form(kv...) }

func post(path, body string, headers ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	return r
}

func basic(id, secret string) string { return st.Basic(id, secret) }
