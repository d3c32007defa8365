package clientauth

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/index"
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
)

// Wire codes of Error.
const (
	CodeInvalidRequest = "invalid_request"
	CodeInvalidClient  = "invalid_client"
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
