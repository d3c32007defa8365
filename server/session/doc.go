// Package session serves the session dialect ("Play Oxygen" API):
// POST /api/auth/session/{client_id}, where client_id is an OAuthClient's
// numericID and the JSON body carries its API_KEY and API_SECRET. The answer
// is {"token":"<JWT>"}, signed HS512 by default as the API document (../shared/api-docs/000_ab4044b4c18c3cb4.txt) shows.
//
// The API document (../shared/api-docs/000_ab4044b4c18c3cb4.txt) defines no error shape; this package's is
// {"error":"<code>","message":"<text>"} for every failure (README.md, "Session API").
package session
