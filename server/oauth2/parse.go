package oauth2

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/tokensmith/tokensmith/server/internal/httpx"
)

// parseBody reads a form-urlencoded or JSON body into form values. Query
// parameters are not read (RFC 6749 3.2 puts them in the body).
func parseBody(r *http.Request) (url.Values, error) {
	var (
		form url.Values
		err  error
	)
	switch httpx.MediaType(r) {
	case httpx.FormMediaType:
		form, err = httpx.ParseForm(r)
	case "application/json":
		form, err = parseJSON(r)
	default:
		return nil, invalidRequest("Content-Type must be application/x-www-form-urlencoded or application/json")
	}
	switch {
	case errors.Is(err, httpx.ErrTooLarge):
		return nil, errTooLarge
	case errors.Is(err, httpx.ErrRepeated):
		return nil, invalidRequest("Parameters may not be repeated")
	case err != nil:
		return nil, invalidRequest("The request body could not be parsed")
	}
	return form, nil
}

// parseJSON accepts one object whose values are strings, numbers or null
// (a numeric client_id is sent as a number by some clients).
func parseJSON(r *http.Request) (url.Values, error) {
	b, err := httpx.ReadBody(r)
	if err != nil {
		return nil, err
	}
	// encoding/json would replace invalid UTF-8 with U+FFFD; refuse it instead.
	if !utf8.Valid(b) {
		return nil, httpx.ErrMalformed
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, httpx.ErrMalformed
	}
	form := url.Values{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, httpx.ErrMalformed
		}
		key, ok := t.(string)
		if !ok {
			return nil, httpx.ErrMalformed
		}
		if _, dup := form[key]; dup {
			return nil, httpx.ErrRepeated
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, httpx.ErrMalformed
		}
		switch v := v.(type) {
		case string:
			form[key] = []string{v}
		case json.Number:
			form[key] = []string{v.String()}
		case nil:
			form[key] = nil
		default:
			return nil, httpx.ErrMalformed
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, httpx.ErrMalformed
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, httpx.ErrMalformed
	}
	for k, v := range form {
		if v == nil {
			delete(form, k)
		}
	}
	return form, nil
}

// param returns the single value of key ("" when absent).
func param(form url.Values, key string) (string, error) {
	v, err := httpx.Single(form, key)
	if err != nil {
		return "", invalidRequest("Check the `" + key + "` parameter")
	}
	return v, nil
}

// required returns the non-empty single value of key.
func required(form url.Values, key string) (string, error) {
	v, err := param(form, key)
	if err != nil {
		return "", err
	}
	if v == "" {
		return "", invalidRequest("Check the `" + key + "` parameter")
	}
	return v, nil
}

// scopes splits the scope parameter on spaces; every scope must be RFC 6749
// 3.3 scope-token syntax.
func scopes(form url.Values) ([]string, error) {
	s, err := param(form, "scope")
	if err != nil {
		return nil, err
	}
	out := strings.Fields(s)
	for _, sc := range out {
		if !scopeToken(sc) {
			return nil, errInvalidScope
		}
	}
	return out, nil
}

func scopeToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range []byte(s) {
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}
