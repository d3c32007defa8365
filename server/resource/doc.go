// Package resource serves what resource servers and ingress controllers need
// to trust tokensmith tokens:
//
//   - GET /.well-known/jwks.json: the ES256 public keys (HS512 keys are shared
//     secrets and are never published).
//   - GET /.well-known/oauth-authorization-server: RFC 8414 metadata.
//   - POST /oauth/introspect: RFC 7662, client-authenticated. Any authenticated
//     client may introspect any tokensmith token, not only its own: RFC 7662
//     section 2.1 leaves that to the server, and resource servers are clients
//     checking tokens issued to other clients.
//   - POST /oauth/revoke: RFC 7009, client-authenticated; a client revokes only
//     its own tokens. Revocations are recorded in one Secret of the server's
//     namespace (Revoker), which every replica's index watches.
//   - /auth/verify: forward-auth for ingress-nginx auth-url, Traefik
//     ForwardAuth and Envoy ext_authz (HTTP service).
package resource
