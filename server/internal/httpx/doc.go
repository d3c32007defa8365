// Package httpx holds what every dialect of the token server shares: the
// dependencies a handler needs (Deps), request-body parsing with the project's
// rules (a size cap, one value per parameter, strict media types), the wrapper
// that gives each endpoint its dialect's 405, 413 and 500 answers (Endpoint),
// and the no-store headers of token responses.
//
// It knows no dialect's error shape: each dialect passes its own Shape.
package httpx
