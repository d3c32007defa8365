package resource

import (
	"net/http"
	"slices"
	"strings"

	"github.com/tokensmith/tokensmith/server/tokens"
)

// Headers /auth/verify answers with, for the ingress to pass on to the backend.
const (
	HeaderSubject = "X-Auth-Subject"
	HeaderClient  = "X-Auth-Client"
	HeaderScopes  = "X-Auth-Scopes"
	// HeaderSubjectType is "client" or "user": X-Auth-Subject is a client id
	// or a username, and the same string may be both.
	HeaderSubjectType = "X-Auth-Subject-Type"
)

// verify is forward-auth: 200 with the X-Auth-* headers for an active access
// token carrying every scope in ?scope= and meant for ?audience= (when
// given), 401 (RFC 6750 3.1) otherwise, 403 for missing scopes. The body is always empty: ingress controllers look at
// the status and headers only.
func (h *Handlers) verify(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	required, ok := requiredScopes(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_request"`)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	wantAudience, ok := requiredAudience(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_request"`)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	token, present := bearer(r)
	if !present {
		w.Header().Set("WWW-Authenticate", `Bearer`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	snap := h.snapshot()
	if snap == nil {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	now := h.o.Now()
	claims, err := snap.Keyring().Verify(token, h.o.Issuer, now)
	if err != nil || claims.Kind != tokens.Access || !snap.Active(claims, now) ||
		(wantAudience != "" && !slices.Contains(audience(claims, h.o.Issuer), wantAudience)) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if !claims.HasScopes(required) {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+strings.Join(required, " ")+`"`)
		w.WriteHeader(http.StatusForbidden)
		return
	}
	w.Header().Set(HeaderSubject, claims.Subject)
	w.Header().Set(HeaderSubjectType, claims.SubjectType())
	w.Header().Set(HeaderClient, claims.ClientID)
	w.Header().Set(HeaderScopes, claims.ScopeString())
	w.WriteHeader(http.StatusOK)
}

// bearer returns the token of `Authorization: Bearer <token>`; present is
// false when there is no Authorization header at all, and the token is empty
// when the header is not a well-formed Bearer credential (RFC 6750 2.1).
func bearer(r *http.Request) (token string, present bool) {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 || len(vals) == 1 && strings.TrimSpace(vals[0]) == "" {
		return "", false
	}
	if len(vals) > 1 {
		return "", true
	}
	v := vals[0]
	const scheme = "bearer "
	if len(v) <= len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", true
	}
	t := strings.TrimLeft(v[len(scheme):], " ")
	if len(t) == 0 || len(t) > tokens.MaxTokenLength || !isB64Token(t) {
		return "", true
	}
	return t, true
}

// isB64Token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(t string) bool {
	i := 0
	for ; i < len(t); i++ {
		c := t[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && strings.IndexByte("-._~+/", c) < 0 {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(t); i++ {
		if t[i] != '=' {
			return false
		}
	}
	return true
}

// requiredAudience reads ?audience=: at most one, printable ASCII, at most
// 512 bytes (the OAuthClient API's bound on an audience).
func requiredAudience(r *http.Request) (string, bool) {
	vs := r.URL.Query()["audience"]
	switch {
	case len(vs) == 0:
		return "", true
	case len(vs) > 1 || len(vs[0]) == 0 || len(vs[0]) > 512:
		return "", false
	}
	for i := 0; i < len(vs[0]); i++ {
		if c := vs[0][i]; c < 0x21 || c > 0x7e {
			return "", false
		}
	}
	return vs[0], true
}

// requiredScopes reads ?scope= (space separated, may repeat). ok is false
// when a scope is not a valid scope token (RFC 6749 3.3), which also keeps
// the WWW-Authenticate quoted string well formed.
func requiredScopes(r *http.Request) (scopes []string, ok bool) {
	for _, v := range r.URL.Query()["scope"] {
		for _, s := range strings.Fields(v) {
			for i := 0; i < len(s); i++ {
				if c := s[i]; c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
					return nil, false
				}
			}
			scopes = append(scopes, s)
		}
	}
	return scopes, true
}
