package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/index"
	"github.com/tokensmith/tokensmith/server/internal/httpx"
	"github.com/tokensmith/tokensmith/server/internal/issue"
	"github.com/tokensmith/tokensmith/server/tokens"
)

// Path is the route of this dialect.
const Path = "/api/auth/session/{client_id}"

// Grant is the OAuthClient grant type this dialect requires.
const Grant = credstore.GrantSession

// DefaultTTL is a session token's lifetime when the client sets no accessTokenTTL.
const DefaultTTL = tokens.DefaultClientTTL

// Alg is the signature algorithm of session tokens.
type Alg string

const (
	// HS512 signs session tokens with the shared HS512 key, as the API document's (../shared/api-docs/000_ab4044b4c18c3cb4.txt) example shows.
	HS512 Alg = "HS512"
	// ES256 signs session tokens with the ES256 key published in the JWKS.
	ES256 Alg = "ES256"
)

// ParseAlg accepts "HS512" and "ES256".
func ParseAlg(s string) (Alg, error) {
	switch Alg(s) {
	case HS512, ES256:
		return Alg(s), nil
	}
	return "", errors.New(`session: algorithm must be "HS512" or "ES256"`)
}

// Handler serves the session dialect.
type Handler struct {
	deps httpx.Deps
	alg  Alg
}

// New returns the handler; alg "" means HS512.
func New(deps httpx.Deps, alg Alg) *Handler {
	if alg == "" {
		alg = HS512
	}
	return &Handler{deps: deps.Defaults(), alg: alg}
}

// Mount registers the route on r.
func (h *Handler) Mount(r *httpx.Router) {
	r.Mount(&Area, httpx.Route{Path: Path, Methods: []string{http.MethodPost}, Limited: true, Handler: h})
}

type request struct {
	APIKey *string `json:"api_key"`
	Secret *string `json:"secret"`
}

type response struct {
	Token string `json:"token"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok, err := h.serve(r)
	if err != nil {
		h.writeError(w, err)
		return
	}
	h.deps.Metrics.Issued(Dialect, Grant)
	httpx.WriteJSON(w, http.StatusOK, response{Token: tok})
}

// Dialect names this dialect in metrics and logs.
const Dialect = "session"

func (h *Handler) serve(r *http.Request) (string, error) {
	id, err := ParseClientID(mux.Vars(r)["client_id"])
	if err != nil {
		return "", err
	}
	// Numeric ids are a key space of their own, apart from the other dialects' client ids.
	if err := h.deps.CheckClient(Dialect, "numeric:"+strconv.FormatInt(id, 10)); err != nil {
		return "", err
	}
	key, secret, err := parseBody(r)
	if err != nil {
		return "", err
	}
	snap := h.deps.Snapshot()
	if snap == nil || snap.Keyring() == nil {
		return "", errors.New("session: index not ready")
	}
	now := h.deps.Now()
	c := snap.ClientByNumericID(id)
	if !checkKey(c, key, secret, now) {
		return "", errInvalidCredentials
	}
	if !c.HasGrant(Grant) {
		return "", errUnauthorizedClient
	}
	// The server's --session-alg, not the client's tokenFormat: session
	// tokens are always JWTs.
	format := issue.HS512
	if h.alg == ES256 {
		format = issue.ES256
	}
	tok, _, err := issue.Mint(snap.Keyring(), h.deps.Issuer, now, issue.Token{Kind: tokens.Session, Client: c, Scope: c.Scopes,
		TTL: httpx.TTL(time.Duration(c.AccessTokenTTL), DefaultTTL)}, format)
	return tok, err
}

// ParseClientID accepts a decimal integer of at most 19 digits (no sign, no spaces).
func ParseClientID(s string) (int64, error) {
	if s == "" || len(s) > 19 {
		return 0, errBadClientID
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, errBadClientID
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errBadClientID
	}
	return n, nil
}

// parseBody reads {"api_key","secret"}: a JSON object with two non-empty strings.
// A missing Content-Type is taken as JSON; any other type than JSON is refused.
func parseBody(r *http.Request) (key, secret string, err error) {
	switch mt := httpx.MediaType(r); mt {
	case "", "application/json":
	default:
		return "", "", errMediaType
	}
	b, err := httpx.ReadBody(r)
	if errors.Is(err, httpx.ErrTooLarge) {
		return "", "", errTooLarge
	}
	if err != nil {
		return "", "", errBadJSON
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return "", "", errMissing
	}
	// encoding/json would replace invalid UTF-8 with U+FFFD; refuse it instead.
	if !utf8.Valid(b) {
		return "", "", errBadJSON
	}
	var req request
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&req); err != nil {
		return "", "", errBadJSON
	}
	// Nothing but white space may follow the object. dec.More would miss a
	// trailing "}" or "]", which it reads as the end of an enclosing value.
	if len(bytes.TrimSpace(b[dec.InputOffset():])) != 0 {
		return "", "", errBadJSON
	}
	if req.APIKey == nil || req.Secret == nil || *req.APIKey == "" || *req.Secret == "" {
		return "", "", errMissing
	}
	if strings.ContainsRune(*req.APIKey, 0) || strings.ContainsRune(*req.Secret, 0) {
		return "", "", errBadText
	}
	return *req.APIKey, *req.Secret, nil
}

// checkKey compares against every unexpired generation, in constant time on
// digests; an unknown client costs the same digests.
func checkKey(c *index.Client, key, secret string, now time.Time) bool {
	k := credstore.DigestOf(credstore.PurposeAPIKey, key)
	s := credstore.DigestOf(credstore.PurposeAPISecret, secret)
	if c == nil {
		return false
	}
	ok := false
	for _, g := range c.Secrets {
		if g.APIKey == nil || g.APISecret == nil || (g.ExpiresAt != nil && !now.Before(*g.ExpiresAt)) {
			continue
		}
		// Both compared every time: no early exit reveals which one matched.
		kOK := g.APIKey.Equal(k)
		sOK := g.APISecret.Equal(s)
		if kOK && sOK {
			ok = true
		}
	}
	return ok
}
