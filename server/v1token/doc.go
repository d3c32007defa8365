// Package v1token serves the client-credentials v1 dialect:
// POST /v1/auth/token with a form-urlencoded client_id and client_secret,
// answering {"data":{"access_token","token_type":"Bearer","expires_in"}} and
// the API document's (../shared/api-docs/001_c3b6b9736f1d4340.txt) coded errors {"error":{"code","code_reason","message"}}.
// It also answers 404 {"error":"..."} for every other path under /v1/ that no
// other dialect serves.
package v1token
