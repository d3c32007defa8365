// Package server wires the token server: every dialect (session, v1token,
// devicelogin, oauth2), the resource-server endpoints (server/resource) and
// the admin endpoints (/healthz, /readyz, /metrics), each behind the shared
// middleware, on one httpx.Router (exact paths from a map, the rest through
// gorilla/mux). Run starts it against a cluster.
package server
