package oauth2

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tokensmith/tokensmith/server/clientauth"
	"github.com/tokensmith/tokensmith/server/index"
	"github.com/tokensmith/tokensmith/server/internal/httpx"
	"github.com/tokensmith/tokensmith/server/login"
	"github.com/tokensmith/tokensmith/server/tokens"
)

const (
	// Path is the token endpoint.
	Path = "/oauth/token"
	// Dialect names this dialect in metrics and logs.
	Dialect = "oauth2"
	// DefaultTTL is the default lifetime of password-grant access tokens and of
	// refresh tokens: 366 days, as the document's example.
	DefaultTTL = 366 * 24 * time.Hour
	// DefaultClientCredentialsTTL is the client_credentials default, the same
	// hour as /v1/auth/token and the session dialect.
	DefaultClientCredentialsTTL = tokens.DefaultClientTTL
)

// Grant types.
const (
	GrantPassword          = "password"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// Handler serves the token endpoint.
type Handler struct {
	deps  httpx.Deps
	login login.Authenticator
}

// New returns the handler.
func New(deps httpx.Deps, v login.Authenticator) *Handler {
	return &Handler{deps: deps.Defaults(), login: v}
}

// Mount registers /oauth/token.
func (h *Handler) Mount(r *httpx.Router) {
	r.Mount(&Area, httpx.Route{Path: Path, Methods: []string{http.MethodPost}, Limited: true, Handler: h})
}

// response is the success body, in the document's key order.
type response struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

// exchange is one request in progress.
type exchange struct {
	r      *http.Request
	form   url.Values
	snap   *index.Snapshot
	client *index.Client
	basic  bool // the client authenticated with HTTP Basic
	now    time.Time
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := &exchange{r: r}
	grant, resp, err := h.serve(x)
	if err != nil {
		h.writeError(w, err, grant, x.basic)
		return
	}
	h.deps.Metrics.Issued(Dialect, grant)
	httpx.WriteJSON(w, http.StatusOK, resp)
}

func (h *Handler) serve(x *exchange) (grant string, _ *response, _ error) {
	form, err := parseBody(x.r)
	if err != nil {
		return "", nil, err
	}
	x.form = form
	grant, err = param(form, "grant_type")
	if err != nil {
		return "", nil, err
	}
	switch grant {
	case GrantPassword, GrantRefreshToken, GrantClientCredentials:
	default:
		return "unsupported", nil, errUnsupportedGrant
	}
	x.snap = h.deps.Snapshot()
	if x.snap == nil || x.snap.Keyring() == nil {
		return grant, nil, errors.New("oauth2: index not ready")
	}
	x.now = h.deps.Now()
	_, _, basicUsed := x.r.BasicAuth()
	x.basic = basicUsed || strings.HasPrefix(strings.ToLower(x.r.Header.Get("Authorization")), "basic ")
	if !x.basic && x.r.Header.Get("Authorization") == "" {
		// league answers a request without any client credentials with invalid_request.
		if _, err := required(form, "client_id"); err != nil {
			return grant, nil, err
		}
	}
	if id := presentedClientID(x.r, form); id != "" {
		if err := h.deps.CheckClient(Dialect, id); err != nil {
			return grant, nil, err
		}
	}
	c, method, err := clientauth.AuthenticateAt(x.r, form, x.snap, x.now)
	if err != nil {
		var ce *clientauth.Error
		if errors.As(err, &ce) {
			if ce.InvalidRequest() {
				return grant, nil, invalidRequest("")
			}
			return grant, nil, errInvalidClient
		}
		return grant, nil, err
	}
	x.client, x.basic = c, method == clientauth.MethodBasic
	if !c.HasGrant(grant) {
		return grant, nil, errUnauthorizedClient
	}
	var resp *response
	switch grant {
	case GrantPassword:
		resp, err = h.password(x)
	case GrantRefreshToken:
		resp, err = h.refresh(x)
	case GrantClientCredentials:
		resp, err = h.clientCredentials(x)
	}
	return grant, resp, err
}

// presentedClientID is the client id a request names, Basic first, before any
// check of its secret: the per-client limiter keys on it.
func presentedClientID(r *http.Request, form url.Values) string {
	if id, _, ok := clientauth.ParseBasic(r.Header.Get("Authorization")); ok {
		return id
	}
	return form.Get("client_id")
}

// password is grant_type=password (RFC 6749 4.3).
func (h *Handler) password(x *exchange) (*response, error) {
	username, err := required(x.form, "username")
	if err != nil {
		return nil, err
	}
	pw, err := required(x.form, "password")
	if err != nil {
		return nil, err
	}
	requested, err := scopes(x.form)
	if err != nil {
		return nil, err
	}
	// Scopes the client may never have are refused before any password work.
	if _, bad := login.Scopes(requested, x.client.Scopes); bad != "" {
		return nil, errInvalidScope
	}
	u, err := h.login.Login(x.r.Context(), x.snap, login.Request{Username: username, Password: pw, ClientID: x.client.ClientID, Now: x.now})
	if err != nil {
		return nil, err
	}
	granted, bad := login.Scopes(requested, login.Intersect(x.client.Scopes, u.Scopes))
	if bad != "" {
		return nil, errInvalidScope
	}
	session := &tokens.Claims{
		Subject:    u.Username,
		ClientID:   x.client.ClientID,
		Scope:      granted,
		SessionID:  tokens.NewID(),
		Generation: u.CredentialGeneration,
		Binding:    index.Binding(x.client, u),
		Audience:   x.client.Audience(h.deps.Issuer),
	}
	return h.issue(x, session, granted)
}

// refresh is grant_type=refresh_token (RFC 6749 6).
func (h *Handler) refresh(x *exchange) (*response, error) {
	raw, err := required(x.form, "refresh_token")
	if err != nil {
		return nil, err
	}
	requested, err := scopes(x.form)
	if err != nil {
		return nil, err
	}
	old, err := x.snap.Keyring().Verify(raw, h.deps.Issuer, x.now)
	if err != nil || old.Kind != tokens.Refresh {
		return nil, invalidRefresh("Cannot decrypt the refresh token")
	}
	if old.ClientID != x.client.ClientID {
		return nil, invalidRefresh("Token is not linked to client")
	}
	u := x.snap.User(old.Subject)
	if u == nil || u.Disabled || u.CredentialGeneration != old.Generation || (len(u.Clients) > 0 && !contains(u.Clients, x.client.ClientID)) || !x.snap.Active(old, x.now) {
		return nil, invalidRefresh("Token has been revoked")
	}
	// Never wider than first granted, nor than the client and user may have now.
	if _, bad := login.Scopes(requested, old.Scope); bad != "" {
		return nil, errInvalidScope
	}
	granted, bad := login.Scopes(requested, login.Intersect(old.Scope, login.Intersect(x.client.Scopes, u.Scopes)))
	if bad != "" {
		return nil, errInvalidScope
	}
	session := &tokens.Claims{
		Subject:    old.Subject,
		ClientID:   old.ClientID,
		Scope:      old.Scope,
		SessionID:  old.SessionID,
		Device:     old.Device,
		Generation: old.Generation,
		// Active found old bound to these objects (or minted before
		// bindings): the new tokens carry the current binding.
		Binding:  index.Binding(x.client, u),
		Audience: x.client.Audience(h.deps.Issuer),
	}
	return h.issue(x, session, granted)
}

// clientCredentials is grant_type=client_credentials (RFC 6749 4.4).
func (h *Handler) clientCredentials(x *exchange) (*response, error) {
	requested, err := scopes(x.form)
	if err != nil {
		return nil, err
	}
	granted, bad := login.Scopes(requested, x.client.Scopes)
	if bad != "" {
		return nil, errInvalidScope
	}
	c := x.client
	access := &tokens.Claims{Kind: tokens.Access, Issuer: h.deps.Issuer, Subject: c.ClientID, ClientID: c.ClientID, Scope: granted,
		Binding: index.Binding(c, nil), Audience: c.Audience(h.deps.Issuer)}
	ttl := httpx.TTL(time.Duration(c.AccessTokenTTL), DefaultClientCredentialsTTL)
	tok, err := h.mintAccess(x, access, ttl)
	if err != nil {
		return nil, err
	}
	return &response{TokenType: "Bearer", ExpiresIn: int64(ttl / time.Second), AccessToken: tok}, nil
}

// issue mints an access token with granted scopes and, for clients with the
// refresh_token grant, a refresh token carrying session's scopes.
func (h *Handler) issue(x *exchange, session *tokens.Claims, granted []string) (*response, error) {
	c := x.client
	access := *session
	access.Kind, access.Issuer, access.Scope = tokens.Access, h.deps.Issuer, granted
	ttl := httpx.TTL(time.Duration(c.AccessTokenTTL), DefaultTTL)
	tok, err := h.mintAccess(x, &access, ttl)
	if err != nil {
		return nil, err
	}
	resp := &response{TokenType: "Bearer", ExpiresIn: int64(ttl / time.Second), AccessToken: tok}
	if c.HasGrant(GrantRefreshToken) {
		rt := *session
		rt.Kind, rt.Issuer, rt.ID = tokens.Refresh, h.deps.Issuer, ""
		rt.IssuedAt, rt.ExpiresAt = x.now, x.now.Add(httpx.TTL(time.Duration(c.RefreshTokenTTL), DefaultTTL))
		if resp.RefreshToken, err = x.snap.Keyring().Mint(&rt, tokens.FormatOpaque, tokens.PrefixRefresh); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

func (h *Handler) mintAccess(x *exchange, c *tokens.Claims, ttl time.Duration) (string, error) {
	c.IssuedAt, c.ExpiresAt, c.ID = x.now, x.now.Add(ttl), ""
	if x.client.TokenFormat == "opaque" {
		return x.snap.Keyring().Mint(c, tokens.FormatOpaque, tokens.PrefixAccess)
	}
	return x.snap.Keyring().Mint(c, tokens.FormatES256, "")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
