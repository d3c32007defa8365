// Package oauth2 serves POST /oauth/token, the OAuth 2.0 token endpoint in
// the shape Laravel Passport (league/oauth2-server 8) answers: grant types
// password, refresh_token and client_credentials; client authentication in the
// body or with HTTP Basic (server/clientauth); form or JSON bodies; errors as
// {"error","error_description","message"} (plus "hint" where league gives one).
//
// Decisions (documented in README.md, "OAuth 2.0"):
//   - A refresh token is issued only to clients with the refresh_token grant,
//     and never for client_credentials.
//   - Password-grant access tokens and refresh tokens default to 366 days
//     (31622400 s, the API document's (../shared/api-docs/003_b9bba3917c3367e0.txt) example); client_credentials tokens to one
//     hour (tokens.DefaultClientTTL, as /v1/auth/token and the session
//     dialect). A client's accessTokenTTL / refreshTokenTTL override them.
//   - A refresh answers a new access token and a new refresh token for the
//     same session, carrying the originally granted scopes; the old refresh
//     token stays valid until it expires or its session ends (no per-token state).
//   - A refresh may narrow the scope, never widen it.
package oauth2
