// Package httpx holds what every dialect of the token server shares: the
// dependencies a handler needs (Deps), request-body parsing with the project's
// rules (a size cap, one value per parameter, strict media types), the Router
// a dialect mounts its routes on, declaring its Area (metrics label and the
// Shape of its 405, 429 and 500) and which routes the per-address limit
// covers, and the no-store headers of token responses.
//
// It knows no dialect's error shape: each dialect passes its own Shape.
package httpx
