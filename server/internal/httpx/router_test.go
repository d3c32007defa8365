package httpx

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/mux"
)

type testShape struct{ name string }

func (s testShape) ServerError(w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) }
func (s testShape) MethodNotAllowed(w http.ResponseWriter) {
	w.WriteHeader(http.StatusMethodNotAllowed)
	_, _ = io.WriteString(w, s.name+" 405")
}
func (s testShape) TooManyRequests(w http.ResponseWriter, _ time.Duration) {
	w.WriteHeader(http.StatusTooManyRequests)
}

func named(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, name+" "+mux.Vars(r)["id"])
	})
}

// routes mounts the same table on rt: exact routes, a pattern, prefixes, an
// exact route shadowed by an earlier prefix, one mounted twice, and one
// shadowed by a route added to the mux directly.
func routes(rt *Router, m *mux.Router) {
	a := &Area{Name: "a", Shape: testShape{"a"}}
	b := &Area{Name: "b", Shape: testShape{"b"}}
	m.Handle("/direct", named("direct"))
	rt.Mount(a,
		Route{Path: "/token", Methods: []string{http.MethodPost}, Handler: named("token")},
		Route{Path: "/session/{id}", Methods: []string{http.MethodPost}, Handler: named("session")},
		Route{Path: "/session/fixed", Handler: named("fixed")}, // the pattern comes first
		Route{Path: "/any", Handler: named("any")},
		Route{Path: "/p/", Prefix: true, Handler: named("prefix")},
		Route{Path: "/p/below", Handler: named("below")}, // the prefix comes first
		Route{Path: "/direct", Handler: named("shadowed")},
	)
	rt.Mount(b,
		Route{Path: "/token", Handler: named("second")}, // the first /token wins
		Route{Path: "/dots/a.b", Methods: []string{http.MethodGet}, Handler: named("dots")},
	)
	m.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "not found")
	})
}

// TestRouterExactSameAsMux: every request is answered by the exact-path map
// exactly as gorilla/mux alone answers it (the same route, area, 404, 405
// with Allow, redirect of unclean paths), and the map holds only the routes
// gorilla/mux would pick.
func TestRouterExactSameAsMux(t *testing.T) {
	var areas []string
	enter := func(_ http.ResponseWriter, _ *http.Request, a *Area, _ bool) bool {
		areas = append(areas, a.Name)
		return true
	}
	m := mux.NewRouter()
	rt := NewRouter(m, enter)
	routes(rt, m)
	ref := mux.NewRouter()
	routes(NewRouter(ref, enter), ref)

	for _, path := range []string{"/token", "/any", "/dots/a.b"} {
		if rt.exact[path] == nil {
			t.Errorf("%s: not in the exact map", path)
		}
	}
	for _, path := range []string{"/session/fixed", "/p/below", "/direct", "/p/", "/session/{id}"} {
		if rt.exact[path] != nil {
			t.Errorf("%s: in the exact map, but gorilla/mux picks another route", path)
		}
	}

	paths := []string{"/token", "/token/", "/tok", "/Token", "//token", "/./token", "/x/../token", "/%74oken", "/any",
		"/session/1", "/session/fixed", "/p/below", "/p/x", "/p/", "/p", "/direct", "/dots/a.b", "/dots/aXb", "/", "/nothing"}
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodHead, http.MethodDelete, "BREW"} {
		for _, path := range paths {
			do := func(h http.Handler) (*httptest.ResponseRecorder, []string) {
				areas = nil
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
				return rec, areas
			}
			got, gotAreas := do(rt)
			want, wantAreas := do(ref)
			if got.Code != want.Code || got.Body.String() != want.Body.String() ||
				got.Header().Get("Allow") != want.Header().Get("Allow") || got.Header().Get("Location") != want.Header().Get("Location") {
				t.Errorf("%s %s: router %d %q (Allow %q), gorilla/mux %d %q (Allow %q)", method, path,
					got.Code, got.Body, got.Header().Get("Allow"), want.Code, want.Body, want.Header().Get("Allow"))
			}
			if len(gotAreas) != len(wantAreas) || (len(gotAreas) == 1 && gotAreas[0] != wantAreas[0]) {
				t.Errorf("%s %s: areas %v, gorilla/mux %v", method, path, gotAreas, wantAreas)
			}
		}
	}
	// Spot checks of what the comparison above compared.
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPost, "/token", "token "},
		{http.MethodGet, "/token", "a 405"},
		{http.MethodPost, "/session/7", "session 7"},
		{http.MethodGet, "/session/fixed", "a 405"}, // the pattern, with its methods
		{http.MethodGet, "/p/below", "prefix "},
		{http.MethodGet, "/direct", "direct "},
		{http.MethodPost, "/dots/a.b", "b 405"},
		{http.MethodGet, "/nothing", "not found"},
	} {
		rec := httptest.NewRecorder()
		rt.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if rec.Body.String() != c.body {
			t.Errorf("%s %s: %q, want %q", c.method, c.path, rec.Body, c.body)
		}
	}
}
