// Package tokens mints and verifies every token tokensmith issues: signed JWTs
// (ES256, or HS512 for shared-key resource servers) and opaque tokens sealed
// with AES-256-GCM, so that any replica can verify any token with no per-token
// storage. Keys come from the signing-keys Secret through a Keyring, which is
// rebuilt whenever that Secret changes. Minting appends to pooled buffers
// (encode.go) and writes the bytes golang-jwt and encoding/json wrote;
// verifying goes through golang-jwt.
package tokens
