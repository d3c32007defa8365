package clientauth

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/index"
	"github.com/tokensmith/tokensmith/server/saauth"
)

// Method is how the client presented its credentials.
type Method int

const (
	// MethodNone means no client credentials were found.
	MethodNone Method = iota
	// MethodBasic is HTTP Basic (client_secret_basic). Callers answering
	// invalid_client add `WWW-Authenticate: Basic realm="OAuth"` (RFC 6749 5.2).
	MethodBasic
	// MethodPost is client_id and client_secret in the body (client_secret_post).
	MethodPost
	// MethodAssertion is an RFC 7523 client assertion: the token of the
	// ServiceAccount the client binds (private_key_jwt in the metadata).
	MethodAssertion
)

// Wire codes of Error.
const (
	CodeInvalidRequest = "invalid_request"
	CodeInvalidClient  = "invalid_client"
	// CodeUnavailable: a client assertion could not be verified because the
	// API server did not answer (503); the client should retry.
	CodeUnavailable = "temporarily_unavailable"
)

// Error is a failed client authentication. Code is the RFC 6749 5.2 error
// code and Status its HTTP status; Reason is for logs and tests only and never
// holds a credential.
type Error struct {
	Code   string
	Status int
	Reason string
}

func (e *Error) Error() string { return "clientauth: " + e.Code + ": " + e.Reason }

// InvalidRequest reports whether the request was malformed (both methods at
// once, a repeated parameter): 400 invalid_request.
func (e *Error) InvalidRequest() bool { return e.Code == CodeInvalidRequest }

// InvalidClient reports whether the client is unknown, the secret wrong, or
// no credentials were sent: 401 invalid_client.
func (e *Error) InvalidClient() bool { return e.Code == CodeInvalidClient }

// Unavailable reports whether a client assertion could not be verified for
// now (the API server unreachable, no cached verdict): 503.
func (e *Error) Unavailable() bool { return e.Code == CodeUnavailable }

func invalidRequest(reason string) *Error {
	return &Error{Code: CodeInvalidRequest, Status: http.StatusBadRequest, Reason: reason}
}

func invalidClient(reason string) *Error {
	return &Error{Code: CodeInvalidClient, Status: http.StatusUnauthorized, Reason: reason}
}

// Authenticate is AuthenticateAt with the current time.
func Authenticate(r *http.Request, form url.Values, snap *index.Snapshot) (*index.Client, Method, error) {
	return AuthenticateAt(r, form, snap, time.Now())
}

// AuthenticateAt finds the client of a request and checks its secret at now.
// form is the request's parsed body (the query string is never read). The
// error is always an *Error; the Method is reported on failure too, so that a
// caller knows whether to answer with WWW-Authenticate.
func AuthenticateAt(r *http.Request, form url.Values, snap *index.Snapshot, now time.Time) (*index.Client, Method, error) {
	id, secret, method, err := credentials(r, form)
	if err != nil {
		return nil, method, err
	}
	var c *index.Client
	if snap != nil {
		c = snap.Client(id)
	}
	if !CheckSecret(c, secret, now) {
		return nil, method, invalidClient("unknown client or wrong secret")
	}
	return c, method, nil
}

// AuthenticateWith is AuthenticateAt that also takes RFC 7523 client
// assertions (client_assertion_type jwt-bearer and client_assertion, a
// ServiceAccount token) verified by assertions; nil assertions refuses them.
// An assertion authenticates the client that binds the token's ServiceAccount
// in the same namespace; client_id may be sent and must then name that
// client (it is needed when several clients bind the ServiceAccount). An
// assertion together with a client secret or HTTP Basic is refused. Only an
// assertion for a bound ServiceAccount, passing every local check, costs an
// API call, and that only when no verdict is cached.
func AuthenticateWith(r *http.Request, form url.Values, snap *index.Snapshot, now time.Time, assertions *saauth.Verifier) (*index.Client, Method, error) {
	raw, present, err := saauth.FromForm(form)
	if !present {
		return AuthenticateAt(r, form, snap, now)
	}
	if err != nil {
		return nil, MethodAssertion, invalidClient("assertion: " + saauth.ReasonOf(err))
	}
	if len(form["client_secret"]) > 0 || len(r.Header.Values("Authorization")) > 0 {
		// RFC 6749 2.3: one method per request. Refused as invalid_client, not
		// invalid_request: a client sending both does not know which it is.
		return nil, MethodAssertion, invalidClient("assertion: " + saauth.ReasonWithSecret)
	}
	ids := form["client_id"]
	if len(ids) > 1 {
		return nil, MethodAssertion, invalidRequest("repeated client parameter")
	}
	if assertions == nil || snap == nil {
		return nil, MethodAssertion, invalidClient("assertion: client assertions are not accepted")
	}
	a, err := assertions.Parse(raw)
	if err != nil {
		return nil, MethodAssertion, invalidClient("assertion: " + saauth.ReasonOf(err))
	}
	c, reason := boundClient(snap.ServiceAccountClients(a.Namespace, a.ServiceAccount), ids)
	if c == nil {
		return nil, MethodAssertion, invalidClient("assertion: " + reason)
	}
	if err := assertions.Verify(r.Context(), a); err != nil {
		if e := (*saauth.Error)(nil); errors.As(err, &e) && e.Unavailable() {
			return nil, MethodAssertion, &Error{Code: CodeUnavailable, Status: http.StatusServiceUnavailable, Reason: "assertion: " + e.Reason}
		}
		return nil, MethodAssertion, invalidClient("assertion: " + saauth.ReasonOf(err))
	}
	return c, MethodAssertion, nil
}

// boundClient picks the client an assertion stands for among those binding
// its ServiceAccount: the one client_id names, else the only one.
func boundClient(bound []*index.Client, ids []string) (*index.Client, string) {
	if len(ids) == 1 {
		for _, c := range bound {
			if c.ClientID == ids[0] {
				return c, ""
			}
		}
		if len(bound) == 0 {
			return nil, saauth.ReasonNotBound
		}
		return nil, saauth.ReasonClientID
	}
	switch len(bound) {
	case 0:
		return nil, saauth.ReasonNotBound
	case 1:
		return bound[0], ""
	}
	return nil, "several clients bind the ServiceAccount and no client_id says which"
}

// PresentedID is what the per-client limiter counts a request against, read
// before any check of a credential: the client id of Basic or the body, or
// for an assertion without one, its ServiceAccount ("system:serviceaccount:
// <namespace>:<name>", so that a flood of assertions for one ServiceAccount is
// slowed before any TokenReview).
func PresentedID(r *http.Request, form url.Values, assertions *saauth.Verifier) string {
	if id, _, ok := ParseBasic(r.Header.Get("Authorization")); ok {
		return id
	}
	if id := form.Get("client_id"); id != "" {
		return id
	}
	if raw, present, err := saauth.FromForm(form); present && err == nil && assertions != nil {
		if a, err := assertions.Parse(raw); err == nil {
			return a.Subject()
		}
	}
	return ""
}

// credentials extracts the client id and secret, refusing both methods at once.
func credentials(r *http.Request, form url.Values) (id, secret string, _ Method, _ error) {
	bodyIDs, bodySecrets := form["client_id"], form["client_secret"]
	if len(bodyIDs) > 1 || len(bodySecrets) > 1 {
		return "", "", MethodNone, invalidRequest("repeated client parameter")
	}
	var bodyID, bodySecret string
	if len(bodyIDs) == 1 {
		bodyID = bodyIDs[0]
	}
	if len(bodySecrets) == 1 {
		bodySecret = bodySecrets[0]
	}
	auth := r.Header.Values("Authorization")
	if len(auth) > 0 && isBasic(auth[0]) {
		if len(auth) > 1 {
			return "", "", MethodBasic, invalidRequest("repeated Authorization header")
		}
		// RFC 6749 2.3.1: "MUST NOT use more than one authentication method".
		// A client_id in the body that names the same client is tolerated.
		if len(bodySecrets) > 0 {
			return "", "", MethodBasic, invalidRequest("client credentials in both Basic and the body")
		}
		id, secret, ok := ParseBasic(auth[0])
		if !ok {
			return "", "", MethodBasic, invalidClient("malformed Basic credentials")
		}
		if len(bodyIDs) > 0 && bodyID != id {
			return "", "", MethodBasic, invalidRequest("client_id in the body differs from Basic")
		}
		if id == "" || secret == "" {
			return "", "", MethodBasic, invalidClient("empty Basic credentials")
		}
		return id, secret, MethodBasic, nil
	}
	if bodyID == "" && bodySecret == "" {
		return "", "", MethodNone, invalidClient("no client credentials")
	}
	if bodyID == "" || bodySecret == "" {
		return "", "", MethodPost, invalidClient("client_id or client_secret missing")
	}
	return bodyID, bodySecret, MethodPost, nil
}

func isBasic(h string) bool {
	return len(h) >= len("Basic ") && strings.EqualFold(h[:len("Basic ")], "Basic ")
}

// MaxCredentialLength bounds a decoded client id or secret.
const MaxCredentialLength = 1024

// ParseBasic decodes an `Authorization: Basic` value whose user and password
// are form-urlencoded client id and secret (RFC 6749 2.3.1). ok is false for
// anything else: another scheme, bad base64, no colon, bad percent-encoding,
// over-long or control characters.
func ParseBasic(header string) (id, secret string, ok bool) {
	if !isBasic(header) {
		return "", "", false
	}
	enc := strings.TrimLeft(header[len("Basic "):], " ")
	if len(enc) == 0 || len(enc) > 4*MaxCredentialLength {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", "", false
	}
	rawID, rawSecret, found := strings.Cut(string(raw), ":")
	if !found {
		return "", "", false
	}
	if id, err = url.QueryUnescape(rawID); err != nil {
		return "", "", false
	}
	if secret, err = url.QueryUnescape(rawSecret); err != nil {
		return "", "", false
	}
	if len(id) > MaxCredentialLength || len(secret) > MaxCredentialLength || hasControl(id) || hasControl(secret) {
		return "", "", false
	}
	return id, secret, true
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// dummy stands in for an unknown client's secrets so that the work done does
// not reveal whether a client id exists.
var dummy = []credstore.SecretDigests{{ClientSecret: credstore.DigestOf("dummy", "dummy")}}

// CheckSecret reports whether secret is one of c's client secrets that is not
// expired at now (the current one, or a previous one in its rotation grace
// period). It hashes once and compares against every generation in constant
// time; a nil c is compared against a dummy and is never accepted.
func CheckSecret(c *index.Client, secret string, now time.Time) bool {
	d := credstore.DigestOf(credstore.PurposeClientSecret, secret)
	if c == nil {
		matchDigest(dummy, d, now)
		return false
	}
	return matchDigest(c.Secrets, d, now)
}

// matchDigest reports whether d equals the ClientSecret of any generation
// whose ExpiresAt is unset or after now. Every generation is compared.
func matchDigest(gens []credstore.SecretDigests, d credstore.Digest, now time.Time) bool {
	ok := false
	for i := range gens {
		g := &gens[i]
		eq := g.ClientSecret.Equal(d)
		live := g.ExpiresAt == nil || now.Before(*g.ExpiresAt)
		if eq && live && !g.ClientSecret.IsZero() {
			ok = true
		}
	}
	return ok
}
