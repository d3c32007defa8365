package devicelogin

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/index"
	"github.com/tokensmith/tokensmith/server/internal/httpx"
	"github.com/tokensmith/tokensmith/server/internal/issue"
	"github.com/tokensmith/tokensmith/server/login"
	"github.com/tokensmith/tokensmith/server/tokens"
)

const (
	// Dialect names this dialect in metrics and logs.
	Dialect = "device"
	// Grant is the grant type DeviceLoginClient must have.
	Grant = credstore.GrantPassword
	// DefaultTTL is the documented 30 days.
	DefaultTTL = 30 * 24 * time.Hour
	// DefaultDevice is the device-info of a login that sends none.
	DefaultDevice = "Unknown"
	// MaxDeviceInfo is the API document's (../shared/api-docs/002_8eca1d7ed3a6f808.txt) limit on device-info, in characters.
	MaxDeviceInfo = 200
)

// DeviceRecorder learns devices that a user logged in from and that the
// index does not know yet. Record must not block; implementations write
// each device once, off the request path.
type DeviceRecorder interface {
	Record(user index.UserRef, device string, firstSeen time.Time)
}

// Options configure the handler.
type Options struct {
	// ClientID is the OAuthClient whose tokens device logins receive (--device-login-client).
	ClientID string
	// TTL is the token lifetime; 0 means DefaultTTL.
	TTL time.Duration
	// DevMode enables the debug parameter.
	DevMode  bool
	Login    login.Authenticator
	Recorder DeviceRecorder
}

// Handler serves the device login dialect.
type Handler struct {
	deps httpx.Deps
	o    Options
}

// New returns the handler.
func New(deps httpx.Deps, o Options) *Handler {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	return &Handler{deps: deps.Defaults(), o: o}
}

// Mount registers /v1/oauth/ and /v1/oauth.
func (h *Handler) Mount(r *httpx.Router) {
	post := []string{http.MethodPost}
	r.Mount(&Area,
		httpx.Route{Path: "/v1/oauth/", Methods: post, Limited: true, Handler: h},
		httpx.Route{Path: "/v1/oauth", Methods: post, Limited: true, Handler: h})
}

type data struct {
	AccessToken string `json:"access_token"`
	Expiry      int64  `json:"expiry"`
}

type success struct {
	Success bool `json:"success"`
	Data    data `json:"data"`
}

type request struct {
	username, password, device string
	debug                      bool
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, err := parse(r)
	if err != nil {
		h.writeError(w, err, false)
		return
	}
	debug := req.debug && h.o.DevMode
	resp, err := h.serve(r, req)
	if err != nil {
		h.writeError(w, err, debug)
		return
	}
	h.deps.Metrics.Issued(Dialect, Grant)
	httpx.WriteJSON(w, http.StatusOK, resp)
}

func (h *Handler) serve(r *http.Request, req *request) (*success, error) {
	snap := h.deps.Snapshot()
	if snap == nil || snap.Keyring() == nil {
		return nil, errors.New("devicelogin: index not ready")
	}
	c := snap.Client(h.o.ClientID)
	if c == nil || !c.HasGrant(Grant) {
		return nil, errMisconfigured
	}
	now := h.deps.Now()
	u, err := h.o.Login.Login(r.Context(), snap, login.Request{
		Username: req.username, Password: req.password, ClientID: c.ClientID, Device: req.device, Now: now,
	})
	if err != nil {
		return nil, err
	}
	// Device tokens are opaque whatever the client's tokenFormat, as device
	// login has always issued them.
	tok, claims, err := issue.Mint(snap.Keyring(), h.deps.Issuer, now, issue.Token{Kind: tokens.Access, Client: c, User: u,
		Scope: login.Intersect(c.Scopes, u.Scopes), TTL: h.o.TTL, Device: req.device}, issue.OpaqueAccess)
	if err != nil {
		return nil, err
	}
	if h.o.Recorder != nil && !slices.Contains(u.KnownDevices, req.device) {
		h.o.Recorder.Record(u.Ref(), req.device, now)
	}
	return &success{Success: true, Data: data{AccessToken: tok, Expiry: claims.ExpiresAt.Unix()}}, nil
}

// parse reads the parameters from the query string and, when the body is a
// form, from the body too. A parameter given twice (in either or both) is refused.
func parse(r *http.Request) (*request, error) {
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil || !httpx.ValidText(params) {
		return nil, errMalformed
	}
	if httpx.MediaType(r) == httpx.FormMediaType {
		form, err := httpx.ParseForm(r)
		switch {
		case errors.Is(err, httpx.ErrTooLarge):
			return nil, errTooLarge
		case err != nil:
			return nil, errMalformed
		}
		for k, vs := range form {
			params[k] = append(params[k], vs...)
		}
	}
	get := func(k string) (string, error) {
		v, err := httpx.Single(params, k)
		if err != nil {
			return "", errRepeated
		}
		return v, nil
	}
	req := &request{}
	if req.username, err = get("username"); err != nil {
		return nil, err
	}
	if req.password, err = get("password"); err != nil {
		return nil, err
	}
	if req.device, err = get("device-info"); err != nil {
		return nil, err
	}
	debug, err := get("debug")
	if err != nil {
		return nil, err
	}
	req.debug = debug == "1"
	if req.username == "" || req.password == "" {
		return nil, errMissing
	}
	if req.device == "" {
		req.device = DefaultDevice
	}
	if !validDevice(req.device) {
		return nil, errDevice
	}
	return req, nil
}

// validDevice: valid UTF-8, at most MaxDeviceInfo characters, no control characters.
func validDevice(s string) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxDeviceInfo {
		return false
	}
	for _, c := range s {
		if unicode.IsControl(c) {
			return false
		}
	}
	return true
}
