// Package session serves the session dialect ("Play Oxygen" API):
// POST /api/auth/session/{client_id}, where client_id is an OAuthClient's
// numericID and the JSON body carries its API_KEY and API_SECRET. The answer
// is {"token":"<JWT>"}, signed HS512 by default as the document shows.
//
// The document defines no error shape; this package's is
// {"error":"<code>","message":"<text>"} for every failure (see README-snippet).
package session
