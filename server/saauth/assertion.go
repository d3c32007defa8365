package saauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"
)

// AssertionType is the only client_assertion_type accepted (RFC 7523 2.2).
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// MaxAssertionLength bounds client_assertion before anything is decoded. A
// projected ServiceAccount token is about 1 KB (1.3 KB with pod and node
// claims); 8 KiB is also the bound on every other token tokensmith checks.
const MaxAssertionLength = 8 << 10

// Form parameter names (RFC 7523 2.2).
const (
	ParamAssertionType = "client_assertion_type"
	ParamAssertion     = "client_assertion"
)

// Reasons of a refusal. They are for logs, metrics and tests; the client sees
// invalid_client and a fixed description that names none of them but the
// outage (ReasonUnavailable), which a client should retry.
const (
	ReasonMalformed     = "malformed"      // not a form the parser accepts, or a client_assertion_type other than jwt-bearer
	ReasonTooLarge      = "too_large"      // over MaxAssertionLength
	ReasonAudience      = "wrong_audience" // aud does not name this token server
	ReasonExpired       = "expired"        // exp is not after now
	ReasonNotYetValid   = "not_yet_valid"  // nbf or iat later than now plus the clock skew allowed
	ReasonNotBound      = "not_bound"      // no OAuthClient binds the ServiceAccount (or not the client_id named)
	ReasonRejected      = "rejected"       // the API server does not authenticate it: another issuer, a bad signature, a deleted ServiceAccount or pod
	ReasonUnavailable   = "unavailable"    // the API server could not be asked and no verdict is cached
	ReasonWithSecret    = "with_secret"    // an assertion together with a client secret or HTTP Basic
	ReasonClientID      = "client_id"      // client_id names another client than the assertion
	ReasonNotServiceAcc = "not_service_account"
)

// Error is a refused assertion. Reason is one of the Reason constants.
type Error struct{ Reason string }

func (e *Error) Error() string { return "saauth: assertion refused: " + e.Reason }

// Unavailable reports whether the refusal is only the API server being
// unreachable: the assertion may be fine, and a retry may succeed.
func (e *Error) Unavailable() bool { return e.Reason == ReasonUnavailable }

func refuse(reason string) *Error { return &Error{Reason: reason} }

// ReasonOf returns err's Reason, or "" when err is not an *Error.
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// FromForm returns the client assertion of a request's parsed body. present
// is false when the body has neither parameter (another method of client
// authentication, or none). Both parameters must be there exactly once, the
// type must be jwt-bearer and the assertion at most MaxAssertionLength bytes;
// anything else is an *Error.
func FromForm(form url.Values) (assertion string, present bool, _ error) {
	types, assertions := form[ParamAssertionType], form[ParamAssertion]
	if len(types) == 0 && len(assertions) == 0 {
		return "", false, nil
	}
	if len(types) != 1 || len(assertions) != 1 || types[0] != AssertionType {
		return "", true, refuse(ReasonMalformed)
	}
	if len(assertions[0]) > MaxAssertionLength {
		return "", true, refuse(ReasonTooLarge)
	}
	if assertions[0] == "" {
		return "", true, refuse(ReasonMalformed)
	}
	return assertions[0], true, nil
}

// Assertion is what Parse reads from a ServiceAccount token without checking
// its signature: enough to refuse it locally (audience, time, binding) before
// the API server is asked, and to find the client it stands for. Nothing in
// it is trusted until the API server has authenticated the same token.
type Assertion struct {
	Raw       string
	Issuer    string
	Audiences []string
	// Expiry is required; NotBefore and IssuedAt are zero when absent.
	Expiry, NotBefore, IssuedAt time.Time
	// Namespace and ServiceAccount come from sub,
	// "system:serviceaccount:<namespace>:<name>".
	Namespace, ServiceAccount string
	// PodName is the pod the token is bound to, "" for a token bound to none.
	PodName string

	// key is the SHA-256 of Raw when hasKey (set by Verifier.Parse).
	key    [32]byte
	hasKey bool
}

// Subject is the username the API server gives the ServiceAccount.
func (a *Assertion) Subject() string { return SubjectOf(a.Namespace, a.ServiceAccount) }

// SubjectOf is "system:serviceaccount:<namespace>:<name>".
func SubjectOf(namespace, name string) string {
	return subjectPrefix + namespace + ":" + name
}

const subjectPrefix = "system:serviceaccount:"

// Sizes of the names Kubernetes allows: a namespace is a DNS label, a
// ServiceAccount a DNS subdomain.
const (
	maxNamespace = 63
	maxName      = 253
)

type header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
}

type claims struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Aud json.RawMessage `json:"aud"`
	Exp json.RawMessage `json:"exp"`
	Nbf json.RawMessage `json:"nbf"`
	Iat json.RawMessage `json:"iat"`
	K8s *struct {
		Pod *struct {
			Name string `json:"name"`
		} `json:"pod"`
	} `json:"kubernetes.io"`
}

// Parse reads a compact JWS (RFC 7515) whose payload is a ServiceAccount
// token's claims. It checks form only: three base64url parts, a JSON header
// with an asymmetric "alg" (never "none" or an HMAC: the API server signs
// with a private key), a JSON payload with a ServiceAccount sub, an aud,
// and a numeric exp. Every failure is an *Error with ReasonMalformed or
// ReasonTooLarge.
func Parse(raw string) (*Assertion, error) {
	if len(raw) > MaxAssertionLength {
		return nil, refuse(ReasonTooLarge)
	}
	h64, rest, ok := strings.Cut(raw, ".")
	if !ok {
		return nil, refuse(ReasonMalformed)
	}
	p64, s64, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(s64, ".") || h64 == "" || p64 == "" || s64 == "" {
		return nil, refuse(ReasonMalformed)
	}
	var h header
	if !decodeJSON(h64, &h) || !asymmetric(h.Alg) {
		return nil, refuse(ReasonMalformed)
	}
	if _, err := base64.RawURLEncoding.DecodeString(s64); err != nil {
		return nil, refuse(ReasonMalformed)
	}
	var c claims
	if !decodeJSON(p64, &c) {
		return nil, refuse(ReasonMalformed)
	}
	a := &Assertion{Raw: raw, Issuer: c.Iss}
	var ok2 bool
	if a.Namespace, a.ServiceAccount, ok2 = splitSubject(c.Sub); !ok2 {
		return nil, refuse(ReasonNotServiceAcc)
	}
	if a.Audiences, ok2 = audiences(c.Aud); !ok2 {
		return nil, refuse(ReasonMalformed)
	}
	var err error
	if len(c.Exp) == 0 {
		return nil, refuse(ReasonMalformed)
	}
	if a.Expiry, err = numericDate(c.Exp); err != nil {
		return nil, refuse(ReasonMalformed)
	}
	if len(c.Nbf) > 0 {
		if a.NotBefore, err = numericDate(c.Nbf); err != nil {
			return nil, refuse(ReasonMalformed)
		}
	}
	if len(c.Iat) > 0 {
		if a.IssuedAt, err = numericDate(c.Iat); err != nil {
			return nil, refuse(ReasonMalformed)
		}
	}
	if c.K8s != nil && c.K8s.Pod != nil {
		a.PodName = c.K8s.Pod.Name
	}
	return a, nil
}

// SigningAlgs are the JWS algorithms an assertion may carry: those a
// kube-apiserver signs with (RSA and ECDSA keys; EdDSA through an external
// signer), never "none" or an HMAC. Published in the metadata as
// token_endpoint_auth_signing_alg_values_supported.
var SigningAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

func asymmetric(alg string) bool { return alg != "" && slices.Contains(SigningAlgs, alg) }

// decodeJSON decodes one base64url part holding a single JSON object.
func decodeJSON(part string, v any) bool {
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return false
	}
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(v); err != nil {
		return false
	}
	_, err = d.Token()
	return err != nil // anything after the object is malformed; io.EOF is the only error expected
}

// splitSubject reads "system:serviceaccount:<namespace>:<name>" with the
// characters Kubernetes allows in each (so that a name can never carry a
// colon and stand for another namespace).
func splitSubject(sub string) (namespace, name string, ok bool) {
	rest, found := strings.CutPrefix(sub, subjectPrefix)
	if !found {
		return "", "", false
	}
	namespace, name, found = strings.Cut(rest, ":")
	if !found || !dnsName(namespace, maxNamespace, false) || !dnsName(name, maxName, true) {
		return "", "", false
	}
	return namespace, name, true
}

// dnsName reports whether s is a DNS label (or, with dots, a DNS subdomain)
// of lower-case letters, digits and inner dashes, at most limit long.
func dnsName(s string, limit int, dots bool) bool {
	if s == "" || len(s) > limit {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if !dots && label != s {
			return false
		}
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}

// audiences reads aud, a string or an array of strings (RFC 7519 4.1.3).
func audiences(raw json.RawMessage) ([]string, bool) {
	if len(raw) == 0 {
		return nil, false
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, one != ""
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil || len(many) == 0 || len(many) > 32 {
		return nil, false
	}
	return many, true
}

// numericDate reads a NumericDate (seconds since the epoch, possibly with a
// fraction) within years 1970 to 9999.
func numericDate(raw json.RawMessage) (time.Time, error) {
	if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') { // a string, null, an object: not a number
		return time.Time{}, errors.New("saauth: not a NumericDate")
	}
	f, err := json.Number(raw).Float64()
	if err != nil || f < 0 || f > 253402300799 {
		return time.Time{}, errors.New("saauth: not a NumericDate")
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), nil
}
