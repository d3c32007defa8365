package resource

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/tokensmith/tokensmith/server/clientauth"
	"github.com/tokensmith/tokensmith/server/index"
	"github.com/tokensmith/tokensmith/server/internal/httpx"
	"github.com/tokensmith/tokensmith/server/tokens"
)

// Introspection is the RFC 7662 answer for an active token. An inactive one
// is exactly {"active":false}.
type Introspection struct {
	Active    bool   `json:"active"`
	ClientID  string `json:"client_id,omitempty"`
	Username  string `json:"username,omitempty"`
	Scope     string `json:"scope,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Nbf       int64  `json:"nbf,omitempty"`
	Sub       string `json:"sub,omitempty"`
	// SubType is "client" or "user": whether sub is a client id or a username.
	SubType string `json:"sub_type,omitempty"`
	Iss     string `json:"iss,omitempty"`
	// Aud is who the token is meant for: the client's spec.audiences, or the issuer.
	Aud []string `json:"aud,omitempty"`
	Jti string   `json:"jti,omitempty"`
	// Sid and Device are tokensmith extensions for user sessions.
	Sid    string `json:"sid,omitempty"`
	Device string `json:"device,omitempty"`
}

// Token types reported by introspection.
const (
	TypeBearer  = "Bearer"
	TypeRefresh = "refresh_token"
	TypeSession = "session"
)

// authenticated is a request whose client authenticated, with its snapshot.
type authenticated struct {
	form   url.Values
	snap   *index.Snapshot
	client *index.Client
	now    time.Time
	token  string
}

// authenticate does what introspection and revocation share: parse the form,
// authenticate the client, read the single token parameter.
func (h *Handlers) authenticate(r *http.Request) (*authenticated, *Error) {
	form, e := readForm(r)
	if e != nil {
		return nil, e
	}
	snap := h.snapshot()
	if snap == nil {
		return nil, errUnavailable
	}
	now := h.o.Now()
	c, _, err := clientauth.AuthenticateWith(r, form, snap, now, h.o.Assertions)
	if err != nil {
		var ce *clientauth.Error
		if errors.As(err, &ce) {
			h.o.Logger.V(1).Info("client authentication failed", "reason", ce.Reason)
			switch {
			case ce.InvalidRequest():
				return nil, errInvalidReq
			case ce.Unavailable():
				return nil, errAssertionUnavailable
			}
		}
		return nil, errClient
	}
	tok, err := httpx.Single(form, "token")
	if err != nil || tok == "" {
		return nil, errMissingToken
	}
	return &authenticated{form: form, snap: snap, client: c, now: now, token: tok}, nil
}

func (h *Handlers) introspect(w http.ResponseWriter, r *http.Request) {
	a, e := h.authenticate(r)
	if e != nil {
		writeError(w, e)
		return
	}
	// token_type_hint is optional and only a hint (RFC 7662 2.1): the token's
	// own format says what it is, so the hint is ignored.
	claims, err := a.snap.Keyring().Verify(a.token, h.o.Issuer, a.now)
	if err != nil || !a.snap.Active(claims, a.now) {
		httpx.WriteJSON(w, http.StatusOK, Introspection{Active: false})
		return
	}
	httpx.WriteJSON(w, http.StatusOK, describe(claims, h.o.Issuer))
}

// audience is the token's "aud"; tokens minted before audiences existed
// carry none and mean the issuer, the default audience.
func audience(c *tokens.Claims, issuer string) []string {
	if len(c.Audience) == 0 {
		return []string{issuer}
	}
	return c.Audience
}

// describe is the introspection answer for an active token.
func describe(c *tokens.Claims, issuer string) Introspection {
	out := Introspection{
		Active:   true,
		ClientID: c.ClientID,
		Scope:    c.ScopeString(),
		Exp:      c.ExpiresAt.Unix(),
		Iat:      c.IssuedAt.Unix(),
		Nbf:      c.IssuedAt.Unix(),
		Sub:      c.Subject,
		SubType:  c.SubjectType(),
		Aud:      audience(c, issuer),
		Iss:      c.Issuer,
		Jti:      c.ID,
		Sid:      c.SessionID,
		Device:   c.Device,
	}
	switch c.Kind {
	case tokens.Access:
		out.TokenType = TypeBearer
	case tokens.Refresh:
		out.TokenType = TypeRefresh
	case tokens.Session:
		out.TokenType = TypeSession
	}
	if c.SessionID != "" {
		out.Username = c.Subject
	}
	return out
}
