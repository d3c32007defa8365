package tokens

import (
	"strconv"
	"sync"
	"unicode/utf8"
)

// Tokens are encoded by appending to one pooled buffer instead of through
// golang-jwt and encoding/json: reflection, a header map, and a dozen
// intermediate strings and slices per token were a third of the CPU of a
// token request once the signature was set aside (docs/performance.md). The
// bytes are the same as before, field for field (encode_test.go compares them
// with encoding/json), so every verifier of older tokens reads the new ones.

// bufPool holds encoding buffers; a token and its signing input fit in 1 KiB
// unless the claims are unusually long.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > 64<<10 {
		return // an outsized token: let it go rather than keep it
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

const hex = "0123456789abcdef"

// jsonSafe marks the ASCII bytes appendJSONString copies as they are: one
// load per byte of a token instead of six comparisons.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendJSONString appends s as a JSON string exactly as encoding/json
// writes it: HTML-safe (<, > and & escaped), invalid UTF-8 replaced by
// U+FFFD, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendJSONString appends s as a JSON string exactly as encoding/json
// writes it (see appendJSONString), for the answers that carry tokens.
func AppendJSONString(b []byte, s string) []byte { return appendJSONString(b, s) }

// appendKey appends `"name":`, after a comma unless it is the object's first member.
func appendKey(b []byte, name string) []byte {
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

func appendStringField(b []byte, name, v string, omitEmpty bool) []byte {
	if omitEmpty && v == "" {
		return b
	}
	return appendJSONString(appendKey(b, name), v)
}

func appendIntField(b []byte, name string, v int64, omitEmpty bool) []byte {
	if omitEmpty && v == 0 {
		return b
	}
	return strconv.AppendInt(appendKey(b, name), v, 10)
}

// appendStringsField appends a JSON array of strings; nil and empty are omitted.
func appendStringsField(b []byte, name string, v []string) []byte {
	if len(v) == 0 {
		return b
	}
	b = append(appendKey(b, name), '[')
	for i, s := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// appendJWTClaims appends the JSON of c as a JWT payload: the members, order
// and omissions of jwtClaims under encoding/json (golang-jwt writes audiences
// as an array and times as whole seconds).
func appendJWTClaims(b []byte, c *Claims) []byte {
	b = append(b, '{')
	b = appendStringField(b, "iss", c.Issuer, true)
	b = appendStringField(b, "sub", c.Subject, true)
	b = appendStringsField(b, "aud", c.Audience)
	b = appendIntField(b, "exp", c.ExpiresAt.Unix(), false)
	b = appendIntField(b, "nbf", c.IssuedAt.Unix(), false)
	b = appendIntField(b, "iat", c.IssuedAt.Unix(), false)
	b = appendStringField(b, "jti", c.ID, true)
	b = appendStringField(b, "client_id", c.ClientID, true)
	if len(c.Scope) > 0 {
		// The space-joined scope, escaped part by part: a space is never
		// escaped and never completes a multi-byte sequence, so this is the
		// escaped join without building the joined string.
		b = append(appendKey(b, "scope"), '"')
		for i, s := range c.Scope {
			if i > 0 {
				b = append(b, ' ')
			}
			q := appendJSONString(b, s)
			// drop the quotes appendJSONString put around this part
			copy(q[len(b):], q[len(b)+1:len(q)-1])
			b = q[:len(q)-2]
		}
		b = append(b, '"')
	}
	b = appendStringField(b, "sid", c.SessionID, true)
	b = appendStringField(b, "device", c.Device, true)
	b = appendIntField(b, "gen", c.Generation, true)
	b = appendStringField(b, "bnd", c.Binding, true)
	b = appendStringField(b, "sub_type", c.SubjectType(), true)
	b = appendStringField(b, "token_use", string(c.Kind), false)
	return append(b, '}')
}

// appendOpaquePayload appends the JSON of c as opaquePayload under encoding/json.
func appendOpaquePayload(b []byte, c *Claims) []byte {
	b = append(b, '{')
	b = appendStringField(b, "k", string(c.Kind), false)
	b = appendStringField(b, "i", c.Issuer, false)
	b = appendStringField(b, "s", c.Subject, true)
	b = appendStringField(b, "c", c.ClientID, true)
	b = appendStringsField(b, "sc", c.Scope)
	b = appendIntField(b, "ia", c.IssuedAt.Unix(), false)
	b = appendIntField(b, "ex", c.ExpiresAt.Unix(), false)
	b = appendStringField(b, "j", c.ID, false)
	b = appendStringField(b, "sid", c.SessionID, true)
	b = appendStringField(b, "d", c.Device, true)
	b = appendIntField(b, "g", c.Generation, true)
	b = appendStringField(b, "b", c.Binding, true)
	b = appendStringsField(b, "a", c.Audience)
	return append(b, '}')
}
