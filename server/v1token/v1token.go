package v1token

import (
	"errors"
	"net/http"
	"time"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/clientauth"
	"github.com/tokensmith/tokensmith/server/internal/httpx"
	"github.com/tokensmith/tokensmith/server/internal/issue"
	"github.com/tokensmith/tokensmith/server/tokens"
)

const (
	// Path is the token route.
	Path = "/v1/auth/token"
	// Dialect names this dialect in metrics and logs.
	Dialect = "v1"
	// Grant is the OAuthClient grant type this dialect requires.
	Grant = credstore.GrantClientCredentials
	// DefaultTTL is expires_in when the client sets no accessTokenTTL.
	DefaultTTL = tokens.DefaultClientTTL
)

// Handler serves the v1 token endpoint.
type Handler struct {
	deps httpx.Deps
}

// New returns the handler.
func New(deps httpx.Deps) *Handler { return &Handler{deps: deps.Defaults()} }

// Mount registers the token route. MountNotFound must be called after every
// other /v1/ route is registered.
func (h *Handler) Mount(r *httpx.Router) {
	r.Mount(&Area, httpx.Route{Path: Path, Methods: []string{http.MethodPost}, Limited: true, Handler: h})
}

// notFoundArea labels unknown /v1/ paths "other", like every unknown path,
// while they are answered in this dialect's shape.
var notFoundArea = httpx.Area{Name: httpx.Other, Shape: shape{}}

// MountNotFound answers every unregistered path under /v1/ with this dialect's 404.
func (h *Handler) MountNotFound(r *httpx.Router) {
	r.Mount(&notFoundArea, httpx.Route{Path: "/v1/", Prefix: true,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { write(w, errNotFound) })})
}

type data struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

type response struct {
	Data data `json:"data"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	resp, err := h.serve(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	h.deps.Metrics.Issued(Dialect, Grant)
	httpx.WriteJSON(w, http.StatusOK, resp)
}

func (h *Handler) serve(r *http.Request) (*response, error) {
	form, err := httpx.ParseForm(r)
	switch {
	case errors.Is(err, httpx.ErrTooLarge):
		return nil, errTooLarge
	case err != nil:
		return nil, errInvalidRequest
	}
	for _, k := range []string{"client_id", "client_secret"} {
		v, err := httpx.Single(form, k)
		if err != nil || v == "" {
			return nil, errInvalidRequest
		}
	}
	if err := h.deps.CheckClient(Dialect, form.Get("client_id")); err != nil {
		return nil, err
	}
	snap := h.deps.Snapshot()
	if snap == nil || snap.Keyring() == nil {
		return nil, errors.New("v1token: index not ready")
	}
	now := h.deps.Now()
	c, _, err := clientauth.AuthenticateAt(r, form, snap, now)
	if err != nil {
		var ce *clientauth.Error
		if errors.As(err, &ce) {
			if ce.InvalidRequest() {
				return nil, errInvalidRequest
			}
			return nil, errInvalidClient
		}
		return nil, err
	}
	if !c.HasGrant(Grant) {
		return nil, errForbidden
	}
	ttl := httpx.TTL(time.Duration(c.AccessTokenTTL), DefaultTTL)
	tok, _, err := issue.Mint(snap.Keyring(), h.deps.Issuer, now,
		issue.Token{Kind: tokens.Access, Client: c, Scope: c.Scopes, TTL: ttl},
		issue.ClientFormat(c, tokens.PrefixClientToken))
	if err != nil {
		return nil, err
	}
	return &response{Data: data{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(ttl / time.Second)}}, nil
}
