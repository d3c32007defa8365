package credstore

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Labels and names of the Secrets in the token server's namespace.
const (
	// LabelSecretType selects the Secrets the token server reads; its value says which document the Secret holds.
	LabelSecretType = "auth.tokensmith.io/secret-type"

	TypeClientVerifier = "client-verifier"
	TypeUserVerifier   = "user-verifier"
	TypeSigningKeys    = "signing-keys"
	TypeRevocations    = "revocations"

	// AnnotationOwner records "namespace/name" of the OAuthClient or User a verifier belongs to.
	AnnotationOwner = "auth.tokensmith.io/owner"

	// AnnotationWrittenAt on a verifier is when the controller last changed
	// its data (RFC 3339, nanoseconds, UTC): the controller says Ready a
	// propagation allowance after it, and the token server measures from it
	// how long its watch took to serve the change.
	AnnotationWrittenAt = "auth.tokensmith.io/written-at"

	// DataKey is the Secret data key that holds the JSON document.
	DataKey = "verifier.json"

	// SigningKeysSecretName and RevocationsSecretName are fixed: one of each per installation.
	SigningKeysSecretName = "tokensmith-signing-keys"
	RevocationsSecretName = "tokensmith-revocations"
)

// Grant names: an OAuthClient's spec.grantTypes (api/v1alpha1.GrantType takes
// its values from here) and a ClientVerifier's GrantTypes. Each is also the
// "grant" label of the server's token metrics.
const (
	// GrantClientCredentials: POST /v1/auth/token and grant_type=client_credentials on /oauth/token.
	GrantClientCredentials = "client_credentials"
	// GrantPassword: grant_type=password on /oauth/token and device login (POST /v1/oauth/).
	GrantPassword = "password"
	// GrantRefreshToken: password logins also return a refresh token, and grant_type=refresh_token.
	GrantRefreshToken = "refresh_token"
	// GrantSession: POST /api/auth/session/{numericID} with API_KEY and API_SECRET.
	GrantSession = "session"
)

// Token formats: an OAuthClient's spec.tokenFormat and a ClientVerifier's
// TokenFormat (api/v1alpha1.TokenFormat takes its values from here).
const (
	// TokenFormatJWT: signed JWTs, verifiable with the JWKS.
	TokenFormatJWT = "jwt"
	// TokenFormatOpaque: encrypted opaque tokens, checked through introspection.
	TokenFormatOpaque = "opaque"
)

// Keys of the consumer Secret an application mounts.
const (
	KeyClientID     = "CLIENT_ID"
	KeyClientSecret = "CLIENT_SECRET"
	KeyAPIKey       = "API_KEY"
	KeyAPISecret    = "API_SECRET"
	KeyTokenURL     = "TOKEN_URL"
	KeyPassword     = "password"
)

// ClientVerifierName is the verifier Secret's name for the OAuthClient namespace/name.
func ClientVerifierName(namespace, name string) string {
	return verifierName("client", namespace, name)
}

// UserVerifierName is the verifier Secret's name for the User namespace/name.
func UserVerifierName(namespace, name string) string {
	return verifierName("user", namespace, name)
}

// verifierName builds "<kind>-<namespace>-<name>-<hash>": readable, and unique even
// where the dashes would make two pairs collide ("a-b"/"c" and "a"/"b-c").
func verifierName(kind, namespace, name string) string {
	sum := sha256.Sum256([]byte(namespace + "/" + name))
	suffix := hex.EncodeToString(sum[:4])
	readable := kind + "-" + namespace + "-" + name
	const maxReadable = 253 - 9 // a Secret name is at most 253 characters; 9 go to the suffix
	if len(readable) > maxReadable {
		readable = strings.TrimRight(readable[:maxReadable], "-.")
	}
	return readable + "-" + suffix
}

// Digest is a fixed-size SHA-256 digest of a high-entropy secret, compared in
// constant time. Generated secrets carry 256 bits, so a fast digest is as good as
// a slow hash here and keeps client authentication at one hash per request.
type Digest [sha256.Size]byte

// DigestOf returns the digest of secret within purpose, so that the digest of
// an API key can never stand in for the digest of a client secret.
func DigestOf(purpose, secret string) Digest {
	h := sha256.New()
	h.Write([]byte("tokensmith/v1/"))
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write([]byte(secret))
	var d Digest
	h.Sum(d[:0])
	return d
}

// Purposes passed to DigestOf.
const (
	PurposeClientSecret = "client-secret"
	PurposeAPIKey       = "api-key"
	PurposeAPISecret    = "api-secret"
)

// Equal compares in constant time.
func (d Digest) Equal(o Digest) bool { return subtle.ConstantTimeCompare(d[:], o[:]) == 1 }

// IsZero reports whether d was never set.
func (d Digest) IsZero() bool { return d == Digest{} }

// MarshalText encodes as unpadded base64url.
func (d Digest) MarshalText() ([]byte, error) {
	return []byte(base64.RawURLEncoding.EncodeToString(d[:])), nil
}

// UnmarshalText decodes unpadded base64url.
func (d *Digest) UnmarshalText(b []byte) error {
	n, err := base64.RawURLEncoding.Decode(d[:], b)
	if err != nil || n != len(d) || base64.RawURLEncoding.DecodedLen(len(b)) != len(d) {
		return fmt.Errorf("credstore: digest must be %d bytes of base64url", len(d))
	}
	return nil
}

// SecretDigests are the digests of one generation of an OAuthClient's secrets.
type SecretDigests struct {
	ClientSecret Digest `json:"clientSecret"`
	// APIKey and APISecret are set when the client has the session grant.
	APIKey    *Digest `json:"apiKey,omitempty"`
	APISecret *Digest `json:"apiSecret,omitempty"`
	// ExpiresAt is nil for the current generation and set for a previous one
	// that still works during a rotation's grace period.
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

// ClientVerifier is everything the token server needs to authenticate an
// OAuthClient and mint its tokens.
type ClientVerifier struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// ObjectRef identifies the OAuthClient object itself.
	ObjectRef
	ClientID string `json:"clientID"`
	// NumericID is 0 when the client has none.
	NumericID  int64    `json:"numericID,omitempty"`
	GrantTypes []string `json:"grantTypes"`
	Scopes     []string `json:"scopes,omitempty"`
	// AccessTokenTTL and RefreshTokenTTL are 0 when the client did not set them: each dialect has its default.
	AccessTokenTTL  Duration `json:"accessTokenTTL,omitempty"`
	RefreshTokenTTL Duration `json:"refreshTokenTTL,omitempty"`
	TokenFormat     string   `json:"tokenFormat"`
	// Audiences are the "aud" of the client's tokens; empty means the issuer.
	Audiences []string `json:"audiences,omitempty"`
	// Secrets: the current generation first, then previous ones until they expire.
	// Empty when the client may not authenticate with a secret.
	Secrets []SecretDigests `json:"secrets"`
	// ServiceAccountName is set when the client may authenticate with a token of
	// this ServiceAccount, in Namespace (never another namespace's), as an RFC 7523
	// client assertion.
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// PolicyDenied is set while no TokenPolicy allows the OAuthClient: the
	// token server treats the verifier as absent (no token issued, none
	// accepted), and everything else stays as it was, so that a policy that
	// allows the client again restores it unchanged.
	PolicyDenied bool `json:"policyDenied,omitempty"`
}

// UserVerifier is everything the token server needs to log a User in and to
// decide whether its sessions are still valid.
type UserVerifier struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// ObjectRef identifies the User object itself.
	ObjectRef
	Username string `json:"username"`
	// PasswordHash is an argon2id PHC string.
	PasswordHash string   `json:"passwordHash"`
	Scopes       []string `json:"scopes,omitempty"`
	Clients      []string `json:"clients,omitempty"`
	Disabled     bool     `json:"disabled,omitempty"`
	// CredentialGeneration changes whenever the password changes or the user is disabled.
	CredentialGeneration int64      `json:"credentialGeneration"`
	SessionsNotBefore    *time.Time `json:"sessionsNotBefore,omitempty"`
	DeauthorizedDevices  []string   `json:"deauthorizedDevices,omitempty"`
	// KnownDevices mirrors status.devices so that the server writes a device only once.
	KnownDevices []string `json:"knownDevices,omitempty"`
	// LockedUntil mirrors status.lockedUntil so that every replica honours a lockout.
	LockedUntil *time.Time `json:"lockedUntil,omitempty"`
	// PasswordSource identifies the password Secret's content ("uid/resourceVersion"), so that
	// the controller hashes again only when it may have changed.
	PasswordSource string `json:"passwordSource"`
	// PolicyDenied: as ClientVerifier.PolicyDenied, for a User no TokenPolicy allows.
	PolicyDenied bool `json:"policyDenied,omitempty"`
}

// ObjectRef identifies the OAuthClient or User object a verifier was written
// for, beyond its name: a deleted object re-created under the same name,
// client id or username is another object, and the tokens of the old one must
// not work for it. Verifiers written before this field existed have neither.
type ObjectRef struct {
	// UID is the object's metadata.uid. Tokens carry a digest of it.
	UID string `json:"uid,omitempty"`
	// Created is the object's metadata.creationTimestamp. A token minted
	// before bindings existed carries no uid digest: it is accepted only if it
	// was issued after this time, that is, for this object.
	Created *time.Time `json:"created,omitempty"`
}

// Duration is a time.Duration that encodes as a Go duration string.
type Duration time.Duration

// MarshalText encodes as "1h0m0s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Revocations is the document of the revocations Secret: revoked token or
// session ids with the time after which the entry is useless and pruned.
type Revocations struct {
	Entries []Revocation `json:"entries"`
}

// Revocation is one revoked id ("jti" of a token or "sid" of a whole session).
type Revocation struct {
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expiresAt"`
	// Client and Namespace name the OAuthClient that revoked it (its client
	// id and namespace), for the per-client and per-namespace quotas. Entries
	// written before the quotas existed have neither and count towards none.
	Client    string `json:"client,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// Encode marshals a document for Secret data.
func Encode(v any) ([]byte, error) { return json.Marshal(v) }

// Decode unmarshals a document from Secret data.
func Decode(data []byte, v any) error { return json.Unmarshal(data, v) }

// RandomSecret returns n random bytes from crypto/rand as unpadded base64url.
func RandomSecret(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("credstore: reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
