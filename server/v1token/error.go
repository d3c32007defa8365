package v1token

import (
	"errors"
	"net/http"
	"time"

	"github.com/tokensmith/tokensmith/server/internal/httpx"
)

// Error is a failure of this dialect. Coded errors (400, 401, 500, as the
// document shows them) are written {"error":{"code","code_reason","message"}};
// the others (403, 404, 405, 413, 429) {"error":"<message>"} as the API document's (../shared/api-docs/001_c3b6b9736f1d4340.txt) 403 and 404.
type Error struct {
	Status     int
	Code       string // "" for the plain shape
	CodeReason string
	Message    string
}

func (e *Error) Error() string { return e.CodeReason + ": " + e.Message }

// Every answer of this dialect other than success.
var (
	errInvalidRequest = &Error{http.StatusBadRequest, "400013", "invalid_request", "Missing or invalid parameters"}
	errInvalidClient  = &Error{http.StatusUnauthorized, "401021", "invalid_client", "Invalid client_id, client_secret, or session_key"}
	errServer         = &Error{http.StatusInternalServerError, "500999", "API_ERROR", "Api Error, please contact customer service"}
	errForbidden      = &Error{Status: http.StatusForbidden, CodeReason: "unauthorized_client", Message: "Access forbidden for this resource"}
	errNotFound       = &Error{Status: http.StatusNotFound, CodeReason: "not_found", Message: "Resource or endpoint not found"}
	errMethod         = &Error{Status: http.StatusMethodNotAllowed, CodeReason: "method_not_allowed", Message: "Method not allowed"}
	errTooLarge       = &Error{Status: http.StatusRequestEntityTooLarge, CodeReason: "request_too_large", Message: "Request body too large"}
	errTooMany        = &Error{Status: http.StatusTooManyRequests, CodeReason: "too_many_requests", Message: "Too many requests, retry after the Retry-After delay"}
)

type coded struct {
	Code       string `json:"code"`
	CodeReason string `json:"code_reason"`
	Message    string `json:"message"`
}

// writeError is the one place this dialect's errors are written. Anything that
// is not an *Error is logged and answered as the documented 500.
func (h *Handler) writeError(w http.ResponseWriter, err error) {
	var (
		e *Error
		t *httpx.Throttled
	)
	if errors.As(err, &t) {
		httpx.SetRetryAfter(w, t.RetryAfter)
		e = errTooMany
	} else if !errors.As(err, &e) {
		h.deps.Logger.Error(err, "v1 token endpoint failed")
		e = errServer
	}
	h.deps.Metrics.Failed(Dialect, Grant, e.CodeReason)
	write(w, e)
}

func write(w http.ResponseWriter, e *Error) {
	if e.Code == "" {
		httpx.WriteJSON(w, e.Status, map[string]string{"error": e.Message})
		return
	}
	httpx.WriteJSON(w, e.Status, map[string]coded{"error": {e.Code, e.CodeReason, e.Message}})
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

// NotFound writes this dialect's 404 (for the router's not-found handler).
func NotFound(w http.ResponseWriter) { write(w, errNotFound) }
