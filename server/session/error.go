package session

import (
	"errors"
	"net/http"
	"time"

	"github.com/tokensmith/tokensmith/server/internal/httpx"
)

// Error is a failure of this dialect, written as {"error":code,"message":msg}.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Every error this dialect answers. Messages never echo input.
var (
	errBadClientID        = &Error{http.StatusBadRequest, "invalid_request", "client_id must be an integer"}
	errMissing            = &Error{http.StatusBadRequest, "invalid_request", "api_key and secret are required"}
	errBadJSON            = &Error{http.StatusBadRequest, "invalid_request", "The request body must be a JSON object"}
	errBadText            = &Error{http.StatusBadRequest, "invalid_request", "api_key and secret must be text without NUL characters"}
	errMediaType          = &Error{http.StatusUnsupportedMediaType, "invalid_request", "Content-Type must be application/json"}
	errInvalidCredentials = &Error{http.StatusUnauthorized, "invalid_credentials", "Invalid client_id, api_key or secret"}
	errUnauthorizedClient = &Error{http.StatusForbidden, "unauthorized_client", "This client may not create sessions"}
	errMethod             = &Error{http.StatusMethodNotAllowed, "method_not_allowed", "Only POST is allowed"}
	errTooLarge           = &Error{http.StatusRequestEntityTooLarge, "invalid_request", "The request body is too large"}
	errTooMany            = &Error{http.StatusTooManyRequests, "too_many_requests", "Too many requests, retry after the Retry-After delay"}
	errServer             = &Error{http.StatusInternalServerError, "server_error", "The server could not create a session"}
)

// writeError is the one place this dialect's errors are written. Anything that
// is not an *Error is logged and answered as server_error.
func (h *Handler) writeError(w http.ResponseWriter, err error) {
	var (
		e *Error
		t *httpx.Throttled
	)
	if errors.As(err, &t) {
		httpx.SetRetryAfter(w, t.RetryAfter)
		e = errTooMany
	} else if !errors.As(err, &e) {
		h.deps.Logger.Error(err, "session dialect failed")
		e = errServer
	}
	h.deps.Metrics.Failed(Dialect, Grant, e.Code)
	write(w, e)
}

func write(w http.ResponseWriter, e *Error) {
	httpx.WriteJSON(w, e.Status, map[string]string{"error": e.Code, "message": e.Message})
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
