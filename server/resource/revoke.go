package resource

import (
	"context"
	"errors"
	"net/http"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/index"
	"github.com/tokensmith/tokensmith/server/tokens"
)

// Revoker records a revocation durably, for every replica and across
// restarts, and applies it to this replica at once.
type Revoker interface {
	// Revoke marks r.ID (a token's jti or a session's sid) revoked until
	// r.ExpiresAt, after which the entry may be pruned. r.Client and
	// r.Namespace name the revoking OAuthClient, whose quota it counts
	// against; ErrRevocationQuota means that quota is used up.
	Revoke(ctx context.Context, r credstore.Revocation) error
}

// revoke is RFC 7009. Invalid, unknown, expired and foreign tokens all answer
// 200 with an empty body, as the RFC asks; only tokens of the authenticated
// client are revoked. A refresh token revokes its whole session; an access
// or session token revokes itself.
func (h *Handlers) revoke(w http.ResponseWriter, r *http.Request) {
	a, e := h.authenticate(r)
	if e != nil {
		writeError(w, e)
		return
	}
	claims, err := a.snap.Keyring().Verify(a.token, h.o.Issuer, a.now)
	if err != nil || claims.ClientID != a.client.ClientID {
		revoked(w)
		return
	}
	id, until := claims.ID, claims.ExpiresAt.Add(tokens.Leeway)
	if claims.Kind == tokens.Refresh && claims.SessionID != "" {
		// Refreshing a session mints newer refresh tokens that outlive this one,
		// so the session id is kept as long as any of them can live.
		id = claims.SessionID
		if longest := a.now.Add(h.o.SessionRevocationTTL); longest.After(until) {
			until = longest
		}
	}
	// Only a token that could still become usable needs an entry: one
	// already revoked (or whose session is), expired, issued for a deleted
	// object, or from before a password change never will be again.
	switch err := a.snap.Check(claims, a.now); {
	case errors.Is(err, index.ErrRevoked), errors.Is(err, index.ErrExpired),
		errors.Is(err, index.ErrOtherObject), errors.Is(err, index.ErrCredentialsChanged):
		revoked(w)
		return
	}
	if a.snap.Revoked(id) {
		revoked(w)
		return
	}
	if h.o.Revoker == nil {
		h.o.Logger.Error(nil, "no revoker configured: refusing to revoke")
		writeError(w, errUnavailable)
		return
	}
	entry := credstore.Revocation{ID: id, ExpiresAt: until, Client: a.client.ClientID, Namespace: a.client.Namespace}
	if err := h.o.Revoker.Revoke(r.Context(), entry); err != nil {
		if errors.Is(err, ErrRevocationQuota) {
			// This client's (or namespace's) quota only: other clients are unaffected.
			h.o.Logger.Info("revocation refused: the client's quota of live revocations is used up",
				"client", a.client.ClientID, "namespace", a.client.Namespace, "perClient", MaxRevocationsPerClient, "perNamespace", MaxRevocationsPerNamespace)
			writeError(w, errRevocationQuota)
			return
		}
		h.o.Logger.Error(err, "recording a revocation failed", "client", a.client.ClientID, "kind", string(claims.Kind))
		writeError(w, errUnavailable)
		return
	}
	h.o.Logger.Info("revoked", "client", a.client.ClientID, "kind", string(claims.Kind), "session", claims.Kind == tokens.Refresh)
	revoked(w)
}

func revoked(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
}
