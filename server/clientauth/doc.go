// Package clientauth authenticates OAuth 2.0 clients for the endpoints that
// need it (/oauth/token, /oauth/introspect, /oauth/revoke, /v1/auth/token):
// HTTP Basic with form-urlencoded credentials (RFC 6749 2.3.1) or client_id
// and client_secret in the body, never both. Secrets are compared as
// fixed-size digests in constant time against every unexpired generation, and
// an unknown client costs the same work as a known one.
package clientauth
