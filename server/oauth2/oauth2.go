package oauth2

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/clientauth"
	"github.com/tokensmith/tokensmith/server/index"
	"github.com/tokensmith/tokensmith/server/internal/httpx"
	"github.com/tokensmith/tokensmith/server/internal/issue"
	"github.com/tokensmith/tokensmith/server/login"
	"github.com/tokensmith/tokensmith/server/saauth"
	"github.com/tokensmith/tokensmith/server/tokens"
)

const (
	// Path is the token endpoint.
	Path = "/oauth/token"
	// Dialect names this dialect in metrics and logs.
	Dialect = "oauth2"
	// DefaultTTL is the default lifetime of password-grant access tokens and of
	// refresh tokens: 366 days, as the API document's (../shared/api-docs/003_b9bba3917c3367e0.txt) example.
	DefaultTTL = 366 * 24 * time.Hour
	// DefaultClientCredentialsTTL is the client_credentials default, the same
	// hour as /v1/auth/token and the session dialect.
	DefaultClientCredentialsTTL = tokens.DefaultClientTTL
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

// response is the success body, in the API document's (../shared/api-docs/003_b9bba3917c3367e0.txt) key order.
type response struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

// AppendJSON appends what encoding/json writes for r (httpx.JSONAppender):
// the answer of every token request, spared reflection and an encoder.
func (r *response) AppendJSON(b []byte) []byte {
	b = append(b, `{"token_type":`...)
	b = tokens.AppendJSONString(b, r.TokenType)
	b = append(b, `,"expires_in":`...)
	b = strconv.AppendInt(b, r.ExpiresIn, 10)
	b = append(b, `,"access_token":`...)
	b = tokens.AppendJSONString(b, r.AccessToken)
	if r.RefreshToken != "" {
		b = append(b, `,"refresh_token":`...)
		b = tokens.AppendJSONString(b, r.RefreshToken)
	}
	return append(b, '}')
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
	case credstore.GrantPassword, credstore.GrantRefreshToken, credstore.GrantClientCredentials:
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
	_, assertion := form[saauth.ParamAssertion]
	_, assertionType := form[saauth.ParamAssertionType]
	if !x.basic && x.r.Header.Get("Authorization") == "" && !assertion && !assertionType {
		// league answers a request without any client credentials with invalid_request.
		if _, err := required(form, "client_id"); err != nil {
			return grant, nil, err
		}
	}
	if id := clientauth.PresentedID(x.r, form, h.deps.Assertions); id != "" {
		if err := h.deps.CheckClient(Dialect, id); err != nil {
			return grant, nil, err
		}
	}
	c, method, err := clientauth.AuthenticateWith(x.r, form, x.snap, x.now, h.deps.Assertions)
	if err != nil {
		var ce *clientauth.Error
		if errors.As(err, &ce) {
			h.deps.Logger.V(1).Info("client authentication failed", "reason", ce.Reason)
			switch {
			case ce.InvalidRequest():
				return grant, nil, invalidRequest("")
			case ce.Unavailable():
				return grant, nil, errAssertionUnavailable
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
	case credstore.GrantPassword:
		resp, err = h.password(x)
	case credstore.GrantRefreshToken:
		resp, err = h.refresh(x)
	case credstore.GrantClientCredentials:
		resp, err = h.clientCredentials(x)
	}
	return grant, resp, err
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
	return h.issue(x, issue.Token{User: u, Scope: granted, SessionID: tokens.NewID()}, granted)
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
	// u is old's subject, of old's credential generation, and x.client is
	// old's client; Active found old bound to these objects (or minted
	// before bindings): the new tokens carry the current binding.
	return h.issue(x, issue.Token{User: u, Scope: old.Scope, SessionID: old.SessionID, Device: old.Device}, granted)
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
	ttl := httpx.TTL(time.Duration(x.client.AccessTokenTTL), DefaultClientCredentialsTTL)
	tok, err := h.mint(x, issue.Token{Kind: tokens.Access, Scope: granted, TTL: ttl}, issue.ClientFormat(x.client, tokens.PrefixAccess))
	if err != nil {
		return nil, err
	}
	return &response{TokenType: "Bearer", ExpiresIn: int64(ttl / time.Second), AccessToken: tok}, nil
}

// issue mints an access token with granted scopes and, for clients with the
// refresh_token grant, a refresh token of the same session carrying
// session's scopes.
func (h *Handler) issue(x *exchange, session issue.Token, granted []string) (*response, error) {
	c := x.client
	access := session
	access.Kind, access.Scope = tokens.Access, granted
	access.TTL = httpx.TTL(time.Duration(c.AccessTokenTTL), DefaultTTL)
	tok, err := h.mint(x, access, issue.ClientFormat(c, tokens.PrefixAccess))
	if err != nil {
		return nil, err
	}
	resp := &response{TokenType: "Bearer", ExpiresIn: int64(access.TTL / time.Second), AccessToken: tok}
	if c.HasGrant(credstore.GrantRefreshToken) {
		rt := session
		rt.Kind, rt.TTL = tokens.Refresh, httpx.TTL(time.Duration(c.RefreshTokenTTL), DefaultTTL)
		if resp.RefreshToken, err = h.mint(x, rt, issue.Refresh); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// mint issues t to the exchange's client.
func (h *Handler) mint(x *exchange, t issue.Token, f issue.Format) (string, error) {
	t.Client = x.client
	tok, _, err := issue.Mint(x.snap.Keyring(), h.deps.Issuer, x.now, t, f)
	return tok, err
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
