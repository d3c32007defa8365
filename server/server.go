package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tokensmith/tokensmith/server/devicelogin"
	"github.com/tokensmith/tokensmith/server/index"
	"github.com/tokensmith/tokensmith/server/internal/httpx"
	"github.com/tokensmith/tokensmith/server/login"
	"github.com/tokensmith/tokensmith/server/oauth2"
	"github.com/tokensmith/tokensmith/server/resource"
	"github.com/tokensmith/tokensmith/server/saauth"
	"github.com/tokensmith/tokensmith/server/session"
	"github.com/tokensmith/tokensmith/server/tlscert"
	"github.com/tokensmith/tokensmith/server/v1token"
)

// Options configure a Server.
type Options struct {
	// Index serves the credentials. Snapshot, when set, replaces it (tests).
	Index    *index.Index
	Snapshot func() *index.Snapshot
	// Issuer is the "iss" of every token.
	Issuer string
	// DevMode lets device login answer debug=1 with the API document's (../shared/api-docs/002_8eca1d7ed3a6f808.txt) debug
	// object, which tells whether a username exists. Off by default.
	DevMode bool
	// DeviceLoginClient is the client id whose tokens device logins receive;
	// that OAuthClient must exist and have the password grant.
	DeviceLoginClient string
	// DeviceTokenTTL is the device token lifetime; default 30 days.
	DeviceTokenTTL time.Duration
	// SessionAlg signs session dialect tokens; default HS512.
	SessionAlg session.Alg
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger logr.Logger
	// DeviceRecorder writes new devices into User status; nil records nothing.
	DeviceRecorder devicelogin.DeviceRecorder
	// TrustedProxies are the proxies whose X-Forwarded-For is believed when
	// finding a request's client address (per-IP throttling).
	TrustedProxies []netip.Prefix
	// Revoker records /oauth/revoke revocations for every replica; nil makes
	// /oauth/revoke answer 503 (Run sets a revocations.SecretRevoker).
	Revoker resource.Revoker
	// Login tunes password verification (concurrency, dummy hash parameters, lockout).
	Login login.Options
	// RateLimits throttle per client address and per client id; the zero
	// value means DefaultRateLimits, NoRateLimits throttles nothing.
	RateLimits RateLimits
	// Assertions verifies ServiceAccount tokens sent as RFC 7523 client
	// assertions on /oauth/token, /oauth/introspect and /oauth/revoke; nil
	// refuses them (Run sets one backed by TokenReviews).
	Assertions *saauth.Verifier
	// Certificate is the token port's TLS certificate; nil when it serves
	// plain HTTP. /readyz fails while it holds no certificate valid now.
	Certificate *tlscert.Source
}

// Server is the token server's HTTP side.
type Server struct {
	o       Options
	metrics *metrics
	limits  *limits
	handler http.Handler
	admin   http.Handler
	// draining is set once shutdown began: /readyz fails and every answer
	// closes its connection, so clients leave this replica before it stops.
	draining atomic.Bool
}

// New checks o and builds the handlers.
func New(o Options) (*Server, error) {
	if o.Snapshot == nil {
		if o.Index == nil {
			return nil, errors.New("server: Options.Index is required")
		}
		o.Snapshot = o.Index.Snapshot
	}
	if o.Issuer == "" {
		return nil, errors.New("server: Options.Issuer is required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	if o.SessionAlg == "" {
		o.SessionAlg = session.HS512
	}
	if _, err := session.ParseAlg(string(o.SessionAlg)); err != nil {
		return nil, err
	}
	if o.DeviceTokenTTL <= 0 {
		o.DeviceTokenTTL = devicelogin.DefaultTTL
	}
	if o.DevMode {
		o.Logger.Info("WARNING: development mode is on: device login answers debug=1 with whether a username exists; never run it in production")
	}
	if o.DeviceLoginClient == "" {
		o.Logger.Info("no --device-login-client set: POST /v1/oauth/ answers every login with a server error")
	}
	verifier, err := login.New(o.Login)
	if err != nil {
		return nil, err
	}
	s := &Server{o: o, metrics: newMetrics()}
	s.metrics.registerIndexSize(o.Snapshot)
	if o.Index != nil {
		o.Index.OnPropagated(func(d time.Duration) { s.metrics.propagation.Observe(d.Seconds()) })
	}
	s.metrics.registerLockout(o.Login.Lockout)
	s.limits = newLimits(o.RateLimits, o.Now, s.metrics)
	s.metrics.registerAssertions(o.Assertions)
	deps := httpx.Deps{Snapshot: o.Snapshot, Issuer: o.Issuer, Now: o.Now, Logger: o.Logger, Metrics: s.metrics, Assertions: o.Assertions}
	if s.limits.client != nil {
		deps.Clients = s.limits
	}

	m := mux.NewRouter()
	r := httpx.NewRouter(m, s.enter)
	session.New(deps.WithLogger("session"), o.SessionAlg).Mount(r)
	v1 := v1token.New(deps.WithLogger("v1"))
	v1.Mount(r)
	devicelogin.New(deps.WithLogger("device"), devicelogin.Options{
		ClientID: o.DeviceLoginClient, TTL: o.DeviceTokenTTL, DevMode: o.DevMode, Login: verifier, Recorder: o.DeviceRecorder,
	}).Mount(r)
	oauth2.New(deps.WithLogger("oauth2"), verifier).Mount(r)
	resource.New(resource.Options{
		Snapshot: o.Snapshot, Index: o.Index, Issuer: o.Issuer, Now: o.Now, Logger: o.Logger.WithName("resource"), Revoker: o.Revoker,
		Assertions: o.Assertions,
	}).Mount(r)
	v1.MountNotFound(r)
	m.NotFoundHandler = http.HandlerFunc(notFound)
	m.MethodNotAllowedHandler = http.HandlerFunc(methodNotAllowed)
	s.handler = s.middleware(r)
	s.admin = s.adminHandler()
	return s, nil
}

// Handler serves the token APIs.
func (s *Server) Handler() http.Handler { return s.handler }

// AdminHandler serves /healthz, /readyz and /metrics.
func (s *Server) AdminHandler() http.Handler { return s.admin }

// Drain starts the shutdown: from now on /readyz answers 503 and every
// response carries "Connection: close", so a client with a pooled keep-alive
// connection opens a new one (through the Service, to another replica) for its
// next request instead of finding this one closed under it.
func (s *Server) Drain() { s.draining.Store(true) }

// Ready returns nil when the index has synced and holds a complete keyring,
// the TLS certificate (if any) is valid, and shutdown has not begun; else
// what is missing, for /readyz's answer.
func (s *Server) Ready() error {
	if s.draining.Load() {
		return errors.New("shutting down")
	}
	if s.o.Certificate != nil {
		if err := s.o.Certificate.Ready(); err != nil {
			return err
		}
	}
	if s.o.Index != nil && !s.o.Index.Ready() {
		return errors.New("credentials not synced or no signing keys")
	}
	if snap := s.o.Snapshot(); snap == nil || !snap.Keyring().Complete() {
		return errors.New("no signing keys")
	}
	return nil
}

func (s *Server) adminHandler() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	m.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := s.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	m.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	return m
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "message": "No such endpoint"})
}

func methodNotAllowed(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed", "message": "Method not allowed"})
}

// request is what the middleware learns about a request while serving it:
// the route that matched names its area (httpx.Router calls enter).
type request struct {
	area   *httpx.Area
	client netip.Addr
}

// enter is every route's first step (httpx.EnterFunc): it records the
// route's area for the metrics, the log and a panic's answer, and applies
// the per-address limit to the routes that declared it. It finds the
// request's bookkeeping in the middleware's statusRecorder, which the router
// passes on unwrapped: carrying it in the request's context cost a context
// and a copy of the request, per request.
func (s *Server) enter(w http.ResponseWriter, _ *http.Request, a *httpx.Area, limited bool) bool {
	rec, ok := w.(*statusRecorder)
	if !ok {
		return true
	}
	rec.req.area = a
	return !limited || s.limits.limitIP(w, a, rec.req.client)
}

// unknownArea is the area of requests no route claims.
var unknownArea = &httpx.Area{Name: httpx.Other}

// middleware: request id, access log (never the query string, which carries
// device login passwords), latency metrics, and the one panic guard: a panic
// is answered in the shape of the area whose route matched.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		// One allocation holds the recorder, the request's bookkeeping and
		// the X-Request-Id header's value slice.
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK, req: request{area: unknownArea, client: ClientIP(r, s.o.TrustedProxies)}}
		rec.id[0] = id
		w.Header()["X-Request-Id"] = rec.id[:1:1]
		if s.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		req := &rec.req
		defer func() {
			if p := recover(); p != nil {
				if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(p)
				}
				s.o.Logger.Error(nil, "panic serving request", "requestID", id, "path", r.URL.Path, "dialect", req.area.Name,
					"panic", p, "stack", string(debug.Stack()))
				if !rec.wrote {
					serverError(rec, req.area)
				}
			}
			s.metrics.observeLatency(req.area.Name, methodLabel(r.Method), statusLabel(rec.status), time.Since(start).Seconds())
			// The access log is off unless -v: its arguments (strings, boxed
			// ints) were built for every request even then.
			if log := s.o.Logger.V(1); log.Enabled() {
				log.Info("request", "requestID", id, "method", r.Method, "path", r.URL.Path,
					"dialect", req.area.Name, "client", req.client.String(), "status", rec.status, "duration", time.Since(start).String())
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// serverError answers a recovered panic in the area's shape; unknown paths
// have none and get the generic one.
func serverError(w http.ResponseWriter, a *httpx.Area) {
	if a.Shape != nil {
		a.Shape.ServerError(w)
		return
	}
	httpx.WriteJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error", "message": "Internal server error"})
}

// methodLabel maps a request method onto a fixed set of metric label values.
// Go accepts any RFC 9110 token as a method, so an attacker could otherwise
// create one time series per request (issue 15, finding 4).
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// statusLabel keeps the code label within the 100-599 a handler can write
// (net/http refuses anything else), so it too comes from a fixed set.
func statusLabel(code int) string {
	switch code {
	case http.StatusOK:
		return "200" // most answers: no conversion
	case http.StatusBadRequest:
		return "400"
	case http.StatusUnauthorized:
		return "401"
	}
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code)
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
	req    request
	id     [1]string // the X-Request-Id header's value
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// ParseTrustedProxies parses a comma-separated list of CIDRs or addresses.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is neither an address nor a CIDR", f)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
