package httpx

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"
)

// Area is what a dialect declares about its routes when it mounts them: the
// label of its requests in metrics and logs, and the shape of the answers the
// server writes for it (405, 429, 500). The server learns which area a
// request belongs to from the route that matched it, never from its path.
type Area struct {
	Name  string
	Shape Shape
}

// Other labels requests no area claims (unknown paths).
const Other = "other"

// Route is one endpoint of an area.
type Route struct {
	// Path is matched exactly; with Prefix, Path and every path below it.
	Path   string
	Prefix bool
	// Methods are the accepted methods; none accepts any. Others get the
	// area's 405 with an Allow header.
	Methods []string
	// Limited puts the route under the per-address rate limit: the routes
	// that check a password or a client secret.
	Limited bool
	Handler http.Handler
}

// EnterFunc is called when a route matched, before its method is checked. It
// returns false when it already answered (a 429).
type EnterFunc func(w http.ResponseWriter, r *http.Request, a *Area, limited bool) bool

// Router is what dialects mount their routes on. It serves the requests:
// gorilla/mux matches them, except that a path equal to the path of an exact
// route without variables is looked up in a map first. gorilla/mux tries every
// route's regular expression in turn and adds the route and its (empty)
// variables to the request's context, two copies of the request: a token
// request paid for the routes mounted before its own.
type Router struct {
	mux   *mux.Router
	enter EnterFunc
	// exact maps the path of each exact route that gorilla/mux would pick
	// for that path, whatever the method, to its endpoint. Written only by
	// Mount, which is done before serving.
	exact map[string]http.Handler
}

// NewRouter mounts on m; enter, when set, sees every matched request first
// (the server's rate limit and request bookkeeping; tests pass nil). Serve
// through the Router, not m. Middlewares added to m with Use do not see the
// requests of exact routes, nor are mux.Vars and mux.CurrentRoute set for
// them (they have no variables).
func NewRouter(m *mux.Router, enter EnterFunc) *Router {
	return &Router{mux: m, enter: enter, exact: map[string]http.Handler{}}
}

// Mount adds the area's routes in order (gorilla/mux tries routes in the
// order they were added, so a prefix route goes after the routes below it).
func (rt *Router) Mount(a *Area, routes ...Route) {
	for _, route := range routes {
		h := rt.endpoint(a, route)
		if route.Prefix {
			rt.mux.PathPrefix(route.Path).Handler(h)
			continue
		}
		mr := rt.mux.Handle(route.Path, h)
		if !strings.ContainsAny(route.Path, "{}") && rt.picks(route.Path, mr) {
			rt.exact[route.Path] = h
		}
	}
}

// picks reports whether gorilla/mux picks mr for a request to path with
// every method: an earlier route (a prefix, a pattern, one added to the mux
// directly) that matches the path keeps it, so the map answers exactly as
// gorilla/mux would.
func (rt *Router) picks(path string, mr *mux.Route) bool {
	if mr.GetError() != nil {
		return false
	}
	for _, method := range methods {
		req, err := http.NewRequest(method, path, nil)
		if err != nil || req.URL.Path != path {
			return false
		}
		var m mux.RouteMatch
		if !rt.mux.Match(req, &m) || m.MatchErr != nil || m.Route != mr {
			return false
		}
	}
	return true
}

var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace, "OTHER"}

// ServeHTTP serves r by its route, or gorilla/mux's 404 and 405 handlers. A
// path in the exact map is clean (gorilla/mux would not redirect it).
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, ok := rt.exact[r.URL.Path]; ok {
		h.ServeHTTP(w, r)
		return
	}
	rt.mux.ServeHTTP(w, r)
}

// endpoint wraps a route's handler: enter, then wrong methods get the area's
// 405, then the body is capped at MaxBody (handlers map the read error to
// their 413). Panics are recovered once, by the server's middleware, which
// answers them in the area's shape.
func (rt *Router) endpoint(a *Area, route Route) http.Handler {
	allow := strings.Join(route.Methods, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.enter != nil && !rt.enter(w, r, a, route.Limited) {
			return
		}
		if len(route.Methods) > 0 && !slices.Contains(route.Methods, r.Method) {
			w.Header().Set("Allow", allow)
			a.Shape.MethodNotAllowed(w)
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		}
		route.Handler.ServeHTTP(w, r)
	})
}
