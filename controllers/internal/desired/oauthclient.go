package desired

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/credstore"
)

const (
	// DefaultGracePeriod applies when spec.rotationGracePeriod is unset.
	DefaultGracePeriod = 24 * time.Hour
	// MaxPreviousSecrets bounds the verifier when rotations pile up within one grace period.
	MaxPreviousSecrets = 4
	// maxValueLength bounds a credential read from a Secret someone else wrote.
	maxValueLength = 4096
)

// clientIDPattern mirrors the CRD's validation of spec.clientID, applied to a
// CLIENT_ID read from a Secret.
var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]{2,127}$`)

// ConsumerSecretName is the Secret oc's credentials are in.
func ConsumerSecretName(oc *authv1alpha1.OAuthClient) string {
	if oc.Spec.SecretName != "" {
		return oc.Spec.SecretName
	}
	return oc.Name + "-credentials"
}

// hasGrant reports whether oc asks for grant g.
func hasGrant(oc *authv1alpha1.OAuthClient, g authv1alpha1.GrantType) bool {
	return slices.Contains(oc.Spec.GrantTypes, g)
}

// CredentialKeys are the keys whose values authenticate the client: none
// for a client that may not authenticate with a secret (its ServiceAccount
// token is its credential).
func CredentialKeys(oc *authv1alpha1.OAuthClient) []string {
	if !oc.Spec.Allows(authv1alpha1.AuthClientSecret) {
		return nil
	}
	if hasGrant(oc, authv1alpha1.GrantSession) {
		return []string{credstore.KeyClientSecret, credstore.KeyAPIKey, credstore.KeyAPISecret}
	}
	return []string{credstore.KeyClientSecret}
}

// MissingProvidedKeys names what a user-provided Secret's data lacks, or ""
// when it is complete. exists is false when there is no Secret at all.
func MissingProvidedKeys(oc *authv1alpha1.OAuthClient, data map[string][]byte, exists bool) string {
	if !exists {
		return "its credentials (it does not exist)"
	}
	var missing []string
	for _, k := range CredentialKeys(oc) {
		if len(data[k]) == 0 {
			missing = append(missing, k)
		}
	}
	return strings.Join(missing, ", ")
}

// ClaimedClientID is the client id oc holds: fixed in spec, or generated
// earlier and kept in status.
func ClaimedClientID(oc *authv1alpha1.OAuthClient) string {
	if oc.Spec.ClientID != "" {
		return oc.Spec.ClientID
	}
	return oc.Status.ClientID
}

// ResolveClientID settles the client id: spec wins, then the one kept in
// status, then a CLIENT_ID already in the consumer Secret (adoption, data
// from Secret secretName), and only then a new one. The second return value
// explains why the Secret cannot be used.
func ResolveClientID(oc *authv1alpha1.OAuthClient, secretName string, data map[string][]byte) (string, string) {
	inSecret := string(data[credstore.KeyClientID])
	want := ClaimedClientID(oc)
	switch {
	case want != "" && inSecret != "" && inSecret != want:
		// Silently overwriting would break an application configured with the
		// Secret's id; silently ignoring would issue tokens to another id.
		return want, fmt.Sprintf("Secret %s holds a CLIENT_ID different from the client id %q", secretName, want)
	case want != "":
		return want, ""
	case inSecret != "":
		if !clientIDPattern.MatchString(inSecret) {
			return "", fmt.Sprintf("Secret %s holds a CLIENT_ID that is not a valid client id", secretName)
		}
		return inSecret, ""
	}
	return newClientID(), ""
}

// newClientID is 128 random bits in hex: unguessable enough that ids never
// collide, and plain enough for any header or URL.
func newClientID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return hex.EncodeToString(b)
}

// GracePeriod is how long replaced credentials keep working.
func GracePeriod(oc *authv1alpha1.OAuthClient) time.Duration {
	if oc.Spec.RotationGracePeriod != nil && oc.Spec.RotationGracePeriod.Duration >= 0 {
		return oc.Spec.RotationGracePeriod.Duration
	}
	return DefaultGracePeriod
}

// SecretKeys are every key that holds a secret, whatever the client's
// grants: what leaves the consumer Secret of a client that may not
// authenticate with a secret.
var SecretKeys = []string{credstore.KeyClientSecret, credstore.KeyAPIKey, credstore.KeyAPISecret}

// CurrentDigests digests the credentials in the consumer Secret's data; the
// second return value says why they cannot be used. A client without the
// clientSecret method has none: the zero digests.
func CurrentDigests(oc *authv1alpha1.OAuthClient, secretName string, data map[string][]byte) (credstore.SecretDigests, string) {
	if !oc.Spec.Allows(authv1alpha1.AuthClientSecret) {
		return credstore.SecretDigests{}, ""
	}
	for _, k := range CredentialKeys(oc) {
		if len(data[k]) == 0 || len(data[k]) > maxValueLength {
			return credstore.SecretDigests{}, fmt.Sprintf("Secret %s has no usable %s", secretName, k)
		}
	}
	d := credstore.SecretDigests{ClientSecret: credstore.DigestOf(credstore.PurposeClientSecret, string(data[credstore.KeyClientSecret]))}
	if hasGrant(oc, authv1alpha1.GrantSession) {
		k := credstore.DigestOf(credstore.PurposeAPIKey, string(data[credstore.KeyAPIKey]))
		sec := credstore.DigestOf(credstore.PurposeAPISecret, string(data[credstore.KeyAPISecret]))
		d.APIKey, d.APISecret = &k, &sec
	}
	return d, ""
}

func sameDigests(a, b credstore.SecretDigests) bool {
	eq := func(x, y *credstore.Digest) bool {
		if x == nil || y == nil {
			return x == nil && y == nil
		}
		return x.Equal(*y)
	}
	return a.ClientSecret.Equal(b.ClientSecret) && eq(a.APIKey, b.APIKey) && eq(a.APISecret, b.APISecret)
}

// ClientDigests is Digests for oc: nil for a client that may not
// authenticate with a secret, so that a secret it had stops working at once
// (removing the method is a decision, not a rotation).
func ClientDigests(oc *authv1alpha1.OAuthClient, old []credstore.SecretDigests, current credstore.SecretDigests, now time.Time) ([]credstore.SecretDigests, bool) {
	if !oc.Spec.Allows(authv1alpha1.AuthClientSecret) {
		return nil, false
	}
	return Digests(old, current, GracePeriod(oc), now)
}

// Digests is the list of digests a client verifier holds after old (the
// verifier's list, current first; nil when there is none) meets current, the
// digests of the consumer Secret now. When they differ (a rotation, or an
// edit by hand), the old current digests stay for grace, expiring at
// now+grace; previous digests stay until they expire, at most
// MaxPreviousSecrets of them. changed reports that the credentials changed.
func Digests(old []credstore.SecretDigests, current credstore.SecretDigests, grace time.Duration, now time.Time) (secrets []credstore.SecretDigests, changed bool) {
	secrets = []credstore.SecretDigests{current}
	if len(old) == 0 {
		return secrets, false
	}
	if !sameDigests(old[0], current) {
		changed = true
		if grace > 0 {
			prev := old[0]
			expires := now.Add(grace).Truncate(time.Second)
			prev.ExpiresAt = &expires
			secrets = append(secrets, prev)
		}
	}
	for _, p := range old[1:] {
		if p.ExpiresAt != nil && p.ExpiresAt.After(now) && len(secrets) <= MaxPreviousSecrets {
			secrets = append(secrets, p)
		}
	}
	return secrets, changed
}

// Expiry is when to come back to drop the first previous digest of secrets
// to expire (0: none), and the latest expiry (nil: none), for status.
// secrets[1:] must all have ExpiresAt set, as Digests leaves them.
func Expiry(secrets []credstore.SecretDigests, now time.Time) (requeue time.Duration, latest *time.Time) {
	if len(secrets) == 0 {
		return 0, nil
	}
	for _, p := range secrets[1:] {
		if d := p.ExpiresAt.Sub(now); requeue == 0 || d < requeue {
			// One second late, so the digest has surely expired when we look again.
			requeue = d + time.Second
		}
		if latest == nil || p.ExpiresAt.After(*latest) {
			latest = p.ExpiresAt
		}
	}
	return requeue, latest
}

// ClientVerifier is deterministic: the same spec and digests give the same
// document, so an unchanged verifier is never written again.
func ClientVerifier(oc *authv1alpha1.OAuthClient, clientID string, secrets []credstore.SecretDigests) credstore.ClientVerifier {
	grants := make([]string, 0, len(oc.Spec.GrantTypes))
	for _, g := range oc.Spec.GrantTypes {
		grants = append(grants, string(g))
	}
	if len(grants) == 0 {
		grants = []string{string(authv1alpha1.GrantClientCredentials)}
	}
	slices.Sort(grants)
	grants = slices.Compact(grants)
	v := credstore.ClientVerifier{
		Namespace:   oc.Namespace,
		Name:        oc.Name,
		ObjectRef:   objectRef(oc),
		ClientID:    clientID,
		GrantTypes:  grants,
		Scopes:      sortedSet(oc.Spec.Scopes),
		TokenFormat: string(oc.Spec.TokenFormat),
		Audiences:   sortedSet(oc.Spec.Audiences),
		Secrets:     secrets,
	}
	if oc.Spec.Allows(authv1alpha1.AuthServiceAccountToken) {
		// A name only: the ServiceAccount is in the OAuthClient's namespace.
		v.ServiceAccountName = oc.Spec.ServiceAccountName
	}
	if v.TokenFormat == "" {
		v.TokenFormat = string(authv1alpha1.TokenFormatJWT)
	}
	if oc.Spec.NumericID != nil {
		v.NumericID = *oc.Spec.NumericID
	}
	if oc.Spec.AccessTokenTTL != nil {
		v.AccessTokenTTL = credstore.Duration(oc.Spec.AccessTokenTTL.Duration)
	}
	if oc.Spec.RefreshTokenTTL != nil {
		v.RefreshTokenTTL = credstore.Duration(oc.Spec.RefreshTokenTTL.Duration)
	}
	return v
}
