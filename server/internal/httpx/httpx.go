package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"

	"github.com/tokensmith/tokensmith/server/index"
	"github.com/tokensmith/tokensmith/server/saauth"
)

// MaxBody is the largest request body any token endpoint reads (64 KiB).
const MaxBody = 64 << 10

// Deps are what every dialect handler needs. Snapshot is called once per
// request; a nil snapshot means the index has not synced yet.
type Deps struct {
	Snapshot func() *index.Snapshot
	Issuer   string
	Now      func() time.Time
	Logger   logr.Logger
	Metrics  Metrics
	// Clients limits requests per presented client id; nil limits nothing.
	Clients ClientLimiter
	// Assertions verifies ServiceAccount tokens sent as RFC 7523 client
	// assertions; nil refuses them.
	Assertions *saauth.Verifier
}

// ClientLimiter decides whether a request presenting a client id may go on.
// Dialects ask it before authenticating the client, so that it also slows
// secret guessing.
type ClientLimiter interface {
	AllowClient(dialect, clientID string) (retryAfter time.Duration, ok bool)
}

// Throttled is the error of a request a limiter refused: each dialect answers
// it with its own 429 and a Retry-After header.
type Throttled struct{ RetryAfter time.Duration }

func (t *Throttled) Error() string { return "too many requests" }

// CheckClient returns a *Throttled when d.Clients refuses clientID, else nil.
func (d Deps) CheckClient(dialect, clientID string) error {
	if d.Clients == nil {
		return nil
	}
	if retry, ok := d.Clients.AllowClient(dialect, clientID); !ok {
		return &Throttled{RetryAfter: retry}
	}
	return nil
}

// SetRetryAfter sets Retry-After to d in whole seconds, rounded up, at least 1.
func SetRetryAfter(w http.ResponseWriter, d time.Duration) {
	s := int64((d + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.FormatInt(max(s, 1), 10))
}

// Defaults fills in Now, Metrics and a discarding Logger when unset.
func (d Deps) Defaults() Deps {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Metrics == nil {
		d.Metrics = NopMetrics{}
	}
	if d.Logger.GetSink() == nil {
		d.Logger = logr.Discard()
	}
	return d
}

// Metrics counts token outcomes. Reasons are the dialect's wire error codes.
type Metrics interface {
	Issued(dialect, grant string)
	Failed(dialect, grant, reason string)
}

// NopMetrics counts nothing.
type NopMetrics struct{}

// Issued counts nothing.
func (NopMetrics) Issued(string, string) {}

// Failed counts nothing.
func (NopMetrics) Failed(string, string, string) {}

// Shape writes a dialect's answers to faults found outside its handler.
type Shape interface {
	// ServerError answers an unexpected failure (a recovered panic) with the dialect's 500.
	ServerError(w http.ResponseWriter)
	// MethodNotAllowed answers 405; Allow is already set.
	MethodNotAllowed(w http.ResponseWriter)
	// TooManyRequests answers 429 with Retry-After (see SetRetryAfter).
	TooManyRequests(w http.ResponseWriter, retryAfter time.Duration)
}

// NoStore marks a response as uncacheable (RFC 6749 5.1).
func NoStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

// WriteJSON writes v as the JSON body with status. Token endpoints' answers,
// errors included, are never cacheable.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	buf := jsonBufs.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 64<<10 {
			buf.Reset()
			jsonBufs.Put(buf)
		}
	}()
	buf.Reset()
	if a, ok := v.(JSONAppender); ok {
		buf.Write(a.AppendJSON(buf.AvailableBuffer()))
		buf.WriteByte('\n')
	} else if err := json.NewEncoder(buf).Encode(v); err != nil { // what Marshal writes, and a newline
		// Only the handlers' own fixed types are written; this cannot happen.
		buf.Reset()
		buf.WriteString("{}\n")
		status = http.StatusInternalServerError
	}
	// The three headers of every answer share one backing array (one
	// allocation instead of three); each value is capped at its length, so
	// an Add to one of them cannot write into the next.
	vals := [...]string{"no-store", "no-cache", "application/json"}
	shared := vals[:]
	h := w.Header()
	h["Cache-Control"], h["Pragma"], h["Content-Type"] = shared[0:1:1], shared[1:2:2], shared[2:3:3]
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// JSONAppender is a body WriteJSON appends without encoding/json, for the
// answers of the hottest endpoints (a token's): AppendJSON appends to b
// exactly what json.Marshal would write for the value, and returns b.
type JSONAppender interface {
	AppendJSON(b []byte) []byte
}

// jsonBufs are WriteJSON's encoding buffers.
var jsonBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Body parsing errors. Each dialect maps them onto its own error shape.
var (
	// ErrTooLarge: the body exceeds MaxBody.
	ErrTooLarge = errors.New("request body too large")
	// ErrMediaType: the Content-Type is not one the endpoint accepts.
	ErrMediaType = errors.New("unsupported content type")
	// ErrMalformed: the body does not parse.
	ErrMalformed = errors.New("malformed request body")
	// ErrRepeated: a parameter appears more than once (RFC 6749 3.2).
	ErrRepeated = errors.New("repeated parameter")
)

// MediaType returns the request's media type, lower-cased, without
// parameters; "" when there is no Content-Type and "invalid" when it does not parse.
func MediaType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	switch ct {
	case "":
		return ""
	case FormMediaType, "application/json":
		return ct // what clients send: nothing to parse
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "invalid"
	}
	return mt
}

// ReadBody reads the whole (already capped) body.
func ReadBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, ErrTooLarge
		}
		return nil, ErrMalformed
	}
	return b, nil
}

// FormMediaType is the media type of form bodies.
const FormMediaType = "application/x-www-form-urlencoded"

// ParseForm reads a form-urlencoded body. It does not look at the query string.
func ParseForm(r *http.Request) (url.Values, error) {
	if MediaType(r) != FormMediaType {
		return nil, ErrMediaType
	}
	body, err := readBodyString(r)
	if err != nil {
		return nil, err
	}
	return parseForm(body)
}

// readBodyString is ReadBody into a pooled buffer: the string is the one
// allocation (io.ReadAll's growing buffer was another).
func readBodyString(r *http.Request) (string, error) {
	if r.Body == nil {
		return "", nil
	}
	buf := bodyBufs.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 2*MaxBody {
			bodyBufs.Put(buf)
		}
	}()
	buf.Reset()
	if _, err := buf.ReadFrom(r.Body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "", ErrTooLarge
		}
		return "", ErrMalformed
	}
	return buf.String(), nil
}

// bodyBufs are readBodyString's buffers.
var bodyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxFormParams is url.ParseQuery's default limit on the number of
// parameters (a body of MaxBody could hold 32,768); its GODEBUG setting
// urlmaxqueryparams does not change this one.
const maxFormParams = 10000

// parseForm is url.ParseQuery followed by ValidText, with the same result
// and the same errors (any error is ErrMalformed), in fewer allocations: the
// values of all parameters share one backing array (url.ParseQuery
// allocates one slice per parameter), and each key and value is checked as
// it is decoded. A repeated parameter gets a slice of its own with both
// values, as url.ParseQuery gives it, so Single still refuses it.
func parseForm(body string) (url.Values, error) {
	n := strings.Count(body, "&") + 1
	if n > maxFormParams {
		return nil, ErrMalformed
	}
	// The sizes are hints for the few parameters of a real request, not n:
	// a body of "&&&..." must not buy a large map.
	form := make(url.Values, min(n, 8))
	vals := make([]string, 0, min(n, 8))
	for body != "" {
		var pair string
		pair, body, _ = strings.Cut(body, "&")
		if strings.IndexByte(pair, ';') >= 0 {
			return nil, ErrMalformed // url.ParseQuery: "invalid semicolon separator"
		}
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err := url.QueryUnescape(k)
		if err != nil || !validText(k) {
			return nil, ErrMalformed
		}
		v, err = url.QueryUnescape(v)
		if err != nil || !validText(v) {
			return nil, ErrMalformed
		}
		if prev, ok := form[k]; ok {
			form[k] = append(prev, v) // cap(prev) is its length: a copy
			continue
		}
		vals = append(vals, v)
		form[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	return form, nil
}

// ValidText reports whether every key and value is valid UTF-8 without NUL
// bytes. OAuth parameters are UTF-8 (RFC 6749 Appendix B); neither a valid
// credential nor a username holds a NUL, so such a request is malformed, and
// refusing it early spares a password hash.
func ValidText(v url.Values) bool {
	for k, vs := range v {
		if !validText(k) {
			return false
		}
		for _, s := range vs {
			if !validText(s) {
				return false
			}
		}
	}
	return true
}

func validText(s string) bool { return utf8.ValidString(s) && !strings.Contains(s, "\x00") }

// Single returns the one value of key, "" when absent, and ErrRepeated when
// it was sent more than once.
func Single(v url.Values, key string) (string, error) {
	switch vals := v[key]; len(vals) {
	case 0:
		return "", nil
	case 1:
		return vals[0], nil
	default:
		return "", ErrRepeated
	}
}

// TTL returns d when set and positive, otherwise def.
func TTL(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// WithLogger returns d with its logger named name.
func (d Deps) WithLogger(name string) Deps {
	if d.Logger.GetSink() != nil {
		d.Logger = d.Logger.WithName(name)
	}
	return d
}
