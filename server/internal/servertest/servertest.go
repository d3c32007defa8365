// Package servertest builds fixtures for the token server's tests: a real key
// set, cheap argon2id hashes and snapshots. Test code only.
package servertest

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/internal/keyset"
	"github.com/tokensmith/tokensmith/internal/password"
	"github.com/tokensmith/tokensmith/server/index"
	"github.com/tokensmith/tokensmith/server/internal/httpx"
)

// Cheap are argon2id parameters fast enough for unit tests.
var Cheap = password.Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1}

// Now is the fixed clock of handler tests.
var Now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Keys returns a complete key set.
func Keys(tb testing.TB) *keyset.Set {
	tb.Helper()
	s := &keyset.Set{}
	if _, err := s.Reconcile(Now.Add(-time.Hour), 0, 0); err != nil {
		tb.Fatal(err)
	}
	return s
}

// Hash hashes pw with Cheap parameters.
func Hash(tb testing.TB, pw string) string {
	tb.Helper()
	h, err := password.Hash(pw, Cheap)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// Digest is a pointer to the digest of secret under purpose.
func Digest(purpose, secret string) *credstore.Digest {
	d := credstore.DigestOf(purpose, secret)
	return &d
}

// ResourceClients are the clients of the resource endpoints' tests
// (server/resource, server/revocations): each client's secret is its id
// followed by "-secret".
func ResourceClients() []credstore.ClientVerifier {
	mk := func(id string, grants ...string) credstore.ClientVerifier {
		return credstore.ClientVerifier{ClientID: id, GrantTypes: grants, Scopes: []string{"read", "write"},
			Secrets: []credstore.SecretDigests{{ClientSecret: credstore.DigestOf(credstore.PurposeClientSecret, id+"-secret")}}}
	}
	return []credstore.ClientVerifier{
		mk("svc", "client_credentials"),
		mk("mobile", "password", "refresh_token"),
		mk("rs", "client_credentials"), // a resource server that only introspects
		mk("game", "session"),
	}
}

// ResourceUsers are the users of the resource endpoints' tests: alice, and
// bob, disabled when disabled is.
func ResourceUsers(disabled bool) []credstore.UserVerifier {
	return []credstore.UserVerifier{
		{Username: "alice", CredentialGeneration: 1, Scopes: []string{"read", "write"}},
		{Username: "bob", CredentialGeneration: 1, Disabled: disabled},
	}
}

// Snapshot builds a snapshot or fails the test.
func Snapshot(tb testing.TB, clients []credstore.ClientVerifier, users []credstore.UserVerifier, keys *keyset.Set) *index.Snapshot {
	tb.Helper()
	s, err := index.NewSnapshot(clients, users, keys, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// Deps are a dialect's dependencies in handler tests: snap, issuer and the
// fixed clock Now.
func Deps(snap *index.Snapshot, issuer string) httpx.Deps {
	return httpx.Deps{Snapshot: func() *index.Snapshot { return snap }, Issuer: issuer, Now: func() time.Time { return Now }}
}

// Mount calls each of mounts (a dialect's Mount methods) on a new router,
// as server.New does, and returns the router.
func Mount(mounts ...func(*httpx.Router)) http.Handler {
	r := mux.NewRouter()
	for _, m := range mounts {
		m(httpx.NewRouter(r, nil))
	}
	return r
}

// Response is a recorded answer.
type Response struct {
	Status int
	Header http.Header
	Body   string
}

// JSON decodes the body into a map.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Body), &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", r.Body, err)
	}
	return m
}

// Do sends one request to h.
func Do(h http.Handler, method, target, contentType, body string, header ...string) Response {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return Response{Status: rec.Code, Header: rec.Header(), Body: strings.TrimSuffix(string(b), "\n")}
}

// Form encodes key, value pairs as a form body.
func Form(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}

// Basic is the HTTP Basic Authorization value of a client id and secret,
// each form-encoded first as RFC 6749 2.3.1 requires.
func Basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}
