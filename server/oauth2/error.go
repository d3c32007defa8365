package oauth2

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/tokensmith/tokensmith/server/internal/httpx"
	"github.com/tokensmith/tokensmith/server/login"
)

// Error is an OAuth 2.0 error in league/oauth2-server 8's shape:
// {"error","error_description","hint"?,"message"}, message repeating the
// description for Passport's older clients.
type Error struct {
	Status      int
	Code        string
	Description string
	Hint        string
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

// league/oauth2-server's texts.
const (
	descInvalidRequest  = "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed."
	descInvalidScope    = "The requested scope is invalid, unknown, or malformed"
	descServerError     = "The authorization server encountered an unexpected condition which prevented it from fulfilling the request."
	descUnavailable     = "The authorization server is currently unable to handle the request due to a temporary overloading or maintenance of the server."
	descInvalidRefresh  = "The refresh token is invalid."
	descUnsupportedType = "The authorization grant type is not supported by the authorization server."
)

var (
	errInvalidClient      = &Error{Status: http.StatusUnauthorized, Code: "invalid_client", Description: "Client authentication failed"}
	errInvalidCredentials = &Error{Status: http.StatusBadRequest, Code: "invalid_grant", Description: "The user credentials were incorrect."}
	errUnsupportedGrant   = &Error{Status: http.StatusBadRequest, Code: "unsupported_grant_type", Description: descUnsupportedType, Hint: "Check that all required parameters have been provided"}
	errUnauthorizedClient = &Error{Status: http.StatusBadRequest, Code: "unauthorized_client", Description: "The authenticated client is not authorized to use this authorization grant type."}
	errServer             = &Error{Status: http.StatusInternalServerError, Code: "server_error", Description: descServerError}
	errBusy               = &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: descUnavailable}
	// errAssertionUnavailable: a ServiceAccount token with no cached verdict
	// while the API server does not answer. 503, not invalid_client: the
	// client's credential may be fine, and it should retry.
	errAssertionUnavailable = &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: descUnavailable,
		Hint: HintAssertionUnavailable}
	// errTooMany reuses temporarily_unavailable, the code this endpoint already
	// answers when busy: RFC 6749 5.2 defines no rate-limit code for the token
	// endpoint, slow_down (RFC 8628) means "poll less often" to device-flow
	// clients only, and OAuth libraries retry temporarily_unavailable.
	errTooMany  = &Error{Status: http.StatusTooManyRequests, Code: "temporarily_unavailable", Description: descUnavailable, Hint: "Too many requests, retry after the Retry-After delay"}
	errMethod   = &Error{Status: http.StatusMethodNotAllowed, Code: "invalid_request", Description: descInvalidRequest, Hint: "The token endpoint accepts only POST"}
	errTooLarge = &Error{Status: http.StatusRequestEntityTooLarge, Code: "invalid_request", Description: descInvalidRequest, Hint: "The request body is too large"}
)

// HintAssertionUnavailable is the hint of the 503 answered to a ServiceAccount
// token the API server could not be asked about.
const HintAssertionUnavailable = "The Kubernetes API server could not be reached to verify the ServiceAccount token; retry later"

// errInvalidScope does not name the offending scope, unlike league's hint:
// what a client sends as a scope is its input, and a secret pasted into the
// wrong parameter must never come back in an error (test/e2e's leak check
// sends one). The hint says where to look instead.
var errInvalidScope = &Error{Status: http.StatusBadRequest, Code: "invalid_scope", Description: descInvalidScope, Hint: "Check the requested scopes against the client's allowed scopes"}

func invalidRequest(hint string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: descInvalidRequest, Hint: hint}
}

func invalidRefresh(hint string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_grant", Description: descInvalidRefresh, Hint: hint}
}

type body struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Hint        string `json:"hint,omitempty"`
	Message     string `json:"message"`
}

// writeError is the one place this dialect's errors are written. Login
// failures of any reason become invalid_grant; anything unknown is logged
// and answered as server_error.
func (h *Handler) writeError(w http.ResponseWriter, err error, grant string, basic bool) {
	var (
		e *Error
		t *httpx.Throttled
	)
	switch {
	case errors.As(err, &t):
		httpx.SetRetryAfter(w, t.RetryAfter)
		e = errTooMany
	case errors.As(err, &e):
	case errors.Is(err, login.ErrInvalidCredentials):
		e = errInvalidCredentials
	case errors.Is(err, login.ErrBusy), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		e = errBusy
		w.Header().Set("Retry-After", "1")
	default:
		h.deps.Logger.Error(err, "token endpoint failed", "grant", grant)
		e = errServer
	}
	if e.Code == "invalid_client" && basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="OAuth"`)
	}
	if grant == "" {
		grant = "unknown"
	}
	h.deps.Metrics.Failed(Dialect, grant, e.Code)
	write(w, e)
}

func write(w http.ResponseWriter, e *Error) {
	httpx.WriteJSON(w, e.Status, body{Error: e.Code, Description: e.Description, Hint: e.Hint, Message: e.Description})
}

type shape struct{}

func (shape) ServerError(w http.ResponseWriter)      { write(w, errServer) }
func (shape) MethodNotAllowed(w http.ResponseWriter) { write(w, errMethod) }
func (shape) TooManyRequests(w http.ResponseWriter, retry time.Duration) {
	httpx.SetRetryAfter(w, retry)
	write(w, errTooMany)
}

// Area is this dialect's metrics label and error shape, declared at Mount.
var Area = httpx.Area{Name: Dialect, Shape: shape{}}
