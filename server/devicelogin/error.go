package devicelogin

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/tokensmith/tokensmith/server/internal/httpx"
	"github.com/tokensmith/tokensmith/server/login"
)

// Error is a failure of this dialect, written as
// {"success":false,"errors":{"code":code,"message":message}}.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Every answer of this dialect other than success. Messages never echo input.
var (
	errMissing            = &Error{http.StatusBadRequest, "invalid_request", "username and password are required"}
	errDevice             = &Error{http.StatusBadRequest, "invalid_request", "device-info must be at most 200 characters of text"}
	errRepeated           = &Error{http.StatusBadRequest, "invalid_request", "Each parameter may be given only once"}
	errMalformed          = &Error{http.StatusBadRequest, "invalid_request", "The request could not be parsed"}
	errInvalidCredentials = &Error{http.StatusUnauthorized, "invalid_credentials", "Invalid username or password"}
	errMethod             = &Error{http.StatusMethodNotAllowed, "method_not_allowed", "Only POST is allowed"}
	errTooLarge           = &Error{http.StatusRequestEntityTooLarge, "request_too_large", "The request body is too large"}
	errBusy               = &Error{http.StatusServiceUnavailable, "temporarily_unavailable", "Too many logins at once, retry shortly"}
	errTooMany            = &Error{http.StatusTooManyRequests, "too_many_requests", "Too many login attempts, retry after the Retry-After delay"}
	errServer             = &Error{http.StatusInternalServerError, "server_error", "The server could not log you in, please contact support"}
	// errMisconfigured: DeviceLoginClient is missing or lacks the password grant.
	errMisconfigured = errors.New("devicelogin: the device login client does not exist or lacks the password grant")
)

type failure struct {
	Success bool              `json:"success"`
	Errors  map[string]string `json:"errors"`
	Debug   map[string]string `json:"debug,omitempty"`
}

// writeError is the one place this dialect's errors are written. debug is
// true only when the server runs in development mode and the client asked.
func (h *Handler) writeError(w http.ResponseWriter, err error, debug bool) {
	var (
		e   *Error
		dbg map[string]string
	)
	var lf *login.Failure
	switch {
	case errors.As(err, &e):
	case errors.As(err, &lf):
		e = errInvalidCredentials
		if debug {
			if lf.Reason == login.ReasonUnknownUser {
				dbg = map[string]string{"username": "Username not found"}
			} else {
				dbg = map[string]string{"password": "Password incorrect"}
			}
		}
	case errors.Is(err, login.ErrBusy), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		e = errBusy
		w.Header().Set("Retry-After", "1")
	default:
		h.deps.Logger.Error(err, "device login failed", "deviceLoginClient", h.o.ClientID)
		e = errServer
	}
	h.deps.Metrics.Failed(Dialect, Grant, e.Code)
	write(w, e, dbg)
}

func write(w http.ResponseWriter, e *Error, dbg map[string]string) {
	httpx.WriteJSON(w, e.Status, failure{Errors: map[string]string{"code": e.Code, "message": e.Message}, Debug: dbg})
}

type shape struct{}

func (shape) ServerError(w http.ResponseWriter)      { write(w, errServer, nil) }
func (shape) MethodNotAllowed(w http.ResponseWriter) { write(w, errMethod, nil) }
func (shape) TooManyRequests(w http.ResponseWriter, retry time.Duration) {
	httpx.SetRetryAfter(w, retry)
	write(w, errTooMany, nil)
}

// Area is this dialect's metrics label and error shape, declared at Mount.
var Area = httpx.Area{Name: Dialect, Shape: shape{}}
