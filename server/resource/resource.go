package resource

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/tokensmith/tokensmith/server/index"
	"github.com/tokensmith/tokensmith/server/internal/httpx"
	"github.com/tokensmith/tokensmith/server/saauth"
)

// Paths served by Mount.
const (
	PathJWKS       = "/.well-known/jwks.json"
	PathMetadata   = "/.well-known/oauth-authorization-server"
	PathIntrospect = "/oauth/introspect"
	PathRevoke     = "/oauth/revoke"
	PathVerify     = "/auth/verify"
	// PathToken is served by the oauth2 dialect; the metadata names it.
	PathToken = "/oauth/token"
)

// Options are the handlers' dependencies.
type Options struct {
	// Snapshot returns the current credentials; when nil, Index.Snapshot is used.
	Snapshot func() *index.Snapshot
	Index    *index.Index
	// Issuer is the "iss" of every token and the base URL of the metadata's endpoints.
	Issuer string
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger logr.Logger
	// Revoker records revocations durably. When nil, /oauth/revoke answers
	// 503: a revocation that does not reach every replica is not offered.
	Revoker Revoker
	// Assertions verifies ServiceAccount tokens sent as client assertions
	// on introspection and revocation; nil refuses them.
	Assertions *saauth.Verifier
	// SessionRevocationTTL is how long a revoked session id is kept: at least
	// the longest refresh token lifetime, since a refreshed session's newer
	// refresh tokens outlive the one presented. Default MaxTokenLifetime.
	SessionRevocationTTL time.Duration
}

// Quotas of live (unexpired) revocation entries. One OAuthClient, or all
// the OAuthClients of one namespace together, can hold at most this many
// entries at a time, so that no tenant can fill the Secret for the others
// (issue 15, finding 5): it takes MaxRevocationsBytes /
// (MaxRevocationsPerNamespace x ~106 bytes), about 8, namespaces at their
// quota to fill it.
const (
	MaxRevocationsPerClient    = 500
	MaxRevocationsPerNamespace = 1000
)

// ErrRevocationQuota means the revoking client, or its namespace, already
// holds its quota of live revocation entries.
var ErrRevocationQuota = errors.New("resource: the client's quota of live revocations is used up")

// MaxTokenLifetime is the longest lifetime the OAuthClient API admits (8784h).
const MaxTokenLifetime = 8784 * time.Hour

// Handlers serve the resource-server endpoints.
type Handlers struct {
	o Options
}

// New fills in defaults.
func New(o Options) *Handlers {
	if o.Snapshot == nil && o.Index != nil {
		o.Snapshot = o.Index.Snapshot
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	if o.SessionRevocationTTL <= 0 {
		o.SessionRevocationTTL = MaxTokenLifetime
	}
	return &Handlers{o: o}
}

// Mount adds the endpoints to r. The per-address limit covers the endpoints
// that check client secrets; JWKS, metadata and /auth/verify check none and
// are left alone (an ingress controller calls /auth/verify for every request
// it serves).
func (h *Handlers) Mount(r *httpx.Router) {
	get, post := []string{http.MethodGet, http.MethodHead}, []string{http.MethodPost}
	// Forward-auth callers send the original method (Envoy ext_authz, Traefik),
	// and Envoy appends the original path to the configured prefix.
	verify := http.HandlerFunc(h.verify)
	r.Mount(&Area,
		httpx.Route{Path: PathJWKS, Methods: get, Handler: http.HandlerFunc(h.jwks)},
		httpx.Route{Path: PathMetadata, Methods: get, Handler: http.HandlerFunc(h.metadata)},
		httpx.Route{Path: PathIntrospect, Methods: post, Limited: true, Handler: http.HandlerFunc(h.introspect)},
		httpx.Route{Path: PathRevoke, Methods: post, Limited: true, Handler: http.HandlerFunc(h.revoke)},
		httpx.Route{Path: PathVerify, Handler: verify},
		httpx.Route{Path: PathVerify + "/", Prefix: true, Handler: verify})
}

// snapshot returns the current snapshot, or nil when none is usable yet.
func (h *Handlers) snapshot() *index.Snapshot {
	if h.o.Snapshot == nil {
		return nil
	}
	s := h.o.Snapshot()
	if s == nil || s.Keyring() == nil {
		return nil
	}
	return s
}

// endpoint returns the URL of path under the issuer.
func (h *Handlers) endpoint(path string) string {
	return strings.TrimRight(h.o.Issuer, "/") + path
}

// Error is an OAuth 2.0 error answer ({"error","error_description"}).
type Error struct {
	Status      int
	Code        string
	Description string
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

var (
	errMethod       = &Error{http.StatusMethodNotAllowed, "invalid_request", "Method not allowed."}
	errTooLarge     = &Error{http.StatusRequestEntityTooLarge, "invalid_request", "The request body is too large."}
	errMediaType    = &Error{http.StatusBadRequest, "invalid_request", "The request body must be application/x-www-form-urlencoded."}
	errMalformed    = &Error{http.StatusBadRequest, "invalid_request", "The request body is malformed."}
	errMissingToken = &Error{http.StatusBadRequest, "invalid_request", "The token parameter is missing or repeated."}
	errInvalidReq   = &Error{http.StatusBadRequest, "invalid_request", "The request is malformed."}
	errClient       = &Error{http.StatusUnauthorized, "invalid_client", "Client authentication failed."}
	errUnavailable  = &Error{http.StatusServiceUnavailable, "temporarily_unavailable", "The server cannot handle the request now; retry later."}
	// errAssertionUnavailable: a ServiceAccount token with no cached verdict while the API server does not answer.
	errAssertionUnavailable = &Error{http.StatusServiceUnavailable, "temporarily_unavailable", "The Kubernetes API server could not be reached to verify the ServiceAccount token; retry later."}
	// errRevocationQuota answers only the client (or namespace) at its quota of live revocations.
	errRevocationQuota = &Error{http.StatusServiceUnavailable, "temporarily_unavailable", "This client has too many live revocations; retry once some expire."}
	errTooMany         = &Error{http.StatusTooManyRequests, "temporarily_unavailable", "Too many requests; retry after the Retry-After delay."}
	errServer          = &Error{http.StatusInternalServerError, "server_error", "The server encountered an unexpected condition."}
)

type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// writeError is the one place this package's JSON errors are written.
func writeError(w http.ResponseWriter, e *Error) {
	switch e.Status {
	case http.StatusUnauthorized:
		// RFC 9110 requires a challenge on every 401; RFC 6749 5.2 names Basic.
		w.Header().Set("WWW-Authenticate", `Basic realm="OAuth"`)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	}
	httpx.WriteJSON(w, e.Status, errorBody{Error: e.Code, Description: e.Description})
}

type shape struct{}

func (shape) ServerError(w http.ResponseWriter)      { writeError(w, errServer) }
func (shape) MethodNotAllowed(w http.ResponseWriter) { writeError(w, errMethod) }
func (shape) TooManyRequests(w http.ResponseWriter, retryAfter time.Duration) {
	httpx.SetRetryAfter(w, retryAfter)
	writeError(w, errTooMany)
}

// Area is the resource endpoints' metrics label and error shape, declared at Mount.
var Area = httpx.Area{Name: "resource", Shape: shape{}}

// readForm parses the capped form body, mapping failures to errors.
func readForm(r *http.Request) (map[string][]string, *Error) {
	form, err := httpx.ParseForm(r)
	switch {
	case err == nil:
		return form, nil
	case errors.Is(err, httpx.ErrTooLarge):
		return nil, errTooLarge
	case errors.Is(err, httpx.ErrMediaType):
		return nil, errMediaType
	default:
		return nil, errMalformed
	}
}
