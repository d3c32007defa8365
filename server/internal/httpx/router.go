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

// Router is what dialects mount their routes on.
type Router struct {
	mux   *mux.Router
	enter EnterFunc
}

// NewRouter mounts on m; enter, when set, sees every matched request first
// (the server's rate limit and request bookkeeping; tests pass nil).
func NewRouter(m *mux.Router, enter EnterFunc) *Router { return &Router{mux: m, enter: enter} }

// Mount adds the area's routes in order (gorilla/mux tries routes in the
// order they were added, so a prefix route goes after the routes below it).
func (rt *Router) Mount(a *Area, routes ...Route) {
	for _, route := range routes {
		h := rt.endpoint(a, route)
		if route.Prefix {
			rt.mux.PathPrefix(route.Path).Handler(h)
		} else {
			rt.mux.Handle(route.Path, h)
		}
	}
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
