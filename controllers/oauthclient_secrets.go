package controllers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/credstore"
)

const (
	// secretBytes is the entropy of every generated secret: 256 bits.
	secretBytes = 32
	// defaultGracePeriod applies when spec.rotationGracePeriod is unset.
	defaultGracePeriod = 24 * time.Hour
	// maxPreviousSecrets bounds the verifier when rotations pile up within one grace period.
	maxPreviousSecrets = 4
	// maxValueLength bounds a credential read from a Secret someone else wrote.
	maxValueLength = 4096
)

// clientIDPattern mirrors the CRD's validation of spec.clientID, applied to a
// CLIENT_ID read from a Secret.
var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]{2,127}$`)

func consumerSecretName(oc *authv1alpha1.OAuthClient) string {
	if oc.Spec.SecretName != "" {
		return oc.Spec.SecretName
	}
	return oc.Name + "-credentials"
}

func hasGrant(oc *authv1alpha1.OAuthClient, g authv1alpha1.GrantType) bool {
	return slices.Contains(oc.Spec.GrantTypes, g)
}

// credentialKeys are the keys whose values authenticate the client.
func credentialKeys(oc *authv1alpha1.OAuthClient) []string {
	if hasGrant(oc, authv1alpha1.GrantSession) {
		return []string{credstore.KeyClientSecret, credstore.KeyAPIKey, credstore.KeyAPISecret}
	}
	return []string{credstore.KeyClientSecret}
}

// missingProvidedKeys names what a user-provided Secret lacks, or "" when it is complete.
func missingProvidedKeys(oc *authv1alpha1.OAuthClient, s *corev1.Secret) string {
	if s == nil {
		return "its credentials (it does not exist)"
	}
	var missing []string
	for _, k := range credentialKeys(oc) {
		if len(s.Data[k]) == 0 {
			missing = append(missing, k)
		}
	}
	return strings.Join(missing, ", ")
}

// unadoptable explains why oc may not write into the existing Secret s, or "":
// see adoptProblem. A client's own keys are a CLIENT_SECRET.
func (r *OAuthClientReconciler) unadoptable(oc *authv1alpha1.OAuthClient, s *corev1.Secret) string {
	return adoptProblem(oc, "OAuthClient", s, len(s.Data[credstore.KeyClientSecret]) > 0,
		", and it holds no "+credstore.KeyClientSecret, "Choose another spec.secretName")
}

// resolveClientID settles the client id: spec wins, then the one kept in
// status, then a CLIENT_ID already in the Secret (adoption), and only then a
// new one. The second return value explains why the Secret cannot be used.
func resolveClientID(oc *authv1alpha1.OAuthClient, s *corev1.Secret) (string, string) {
	var inSecret string
	if s != nil {
		inSecret = string(s.Data[credstore.KeyClientID])
	}
	want := claimedClientID(oc)
	switch {
	case want != "" && inSecret != "" && inSecret != want:
		// Silently overwriting would break an application configured with the
		// Secret's id; silently ignoring would issue tokens to another id.
		return want, fmt.Sprintf("Secret %s holds a CLIENT_ID different from the client id %q", s.Name, want)
	case want != "":
		return want, ""
	case inSecret != "":
		if !clientIDPattern.MatchString(inSecret) {
			return "", fmt.Sprintf("Secret %s holds a CLIENT_ID that is not a valid client id", s.Name)
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

// ensureConsumerSecret makes the consumer Secret complete without ever
// replacing a credential it holds: create only when the API server has none,
// otherwise adopt it and fill in what is missing. It also carries out a
// rotation requested by the rotate annotation.
//
// issued says that credentials were already handed out through this Secret:
// if it is gone now, someone deleted it (see createConsumerSecret).
func (r *OAuthClientReconciler) ensureConsumerSecret(ctx context.Context, oc *authv1alpha1.OAuthClient, key types.NamespacedName, existing *corev1.Secret, clientID string, issued bool) (*corev1.Secret, error) {
	if existing == nil {
		created, err := r.createConsumerSecret(ctx, oc, key, clientID, issued)
		if err != nil || created != nil {
			return created, err
		}
		// AlreadyExists: somebody (or an earlier reconcile the cache has not
		// shown yet) wrote it. Read it back and adopt it instead, if it may be.
		existing = &corev1.Secret{}
		if err := r.APIReader.Get(ctx, key, existing); err != nil {
			return nil, err
		}
		if problem := r.unadoptable(oc, existing); problem != "" {
			// The next reconcile reports it.
			return nil, fmt.Errorf("secret %s was created by someone else meanwhile", key)
		}
	}

	// An existing Secret is never given an owner reference: only a Secret
	// tokensmith created goes with its OAuthClient.
	desired := existing.DeepCopy()
	adopting := existing.Labels[authv1alpha1.LabelManagedBy] != authv1alpha1.ManagedByValue
	if desired.Labels == nil {
		desired.Labels = map[string]string{}
	}
	desired.Labels[authv1alpha1.LabelManagedBy] = authv1alpha1.ManagedByValue
	if desired.Data == nil {
		desired.Data = map[string][]byte{}
	}

	var filled []string
	for _, k := range append([]string{credstore.KeyClientID}, credentialKeys(oc)...) {
		if len(desired.Data[k]) > 0 {
			continue
		}
		v := clientID
		if k != credstore.KeyClientID {
			var err error
			if v, err = credstore.RandomSecret(secretBytes); err != nil {
				return nil, err
			}
		}
		desired.Data[k] = []byte(v)
		filled = append(filled, k)
	}
	if r.Options.TokenURL != "" {
		desired.Data[credstore.KeyTokenURL] = []byte(r.Options.TokenURL)
	}

	rotate := oc.Annotations[authv1alpha1.AnnotationRotate]
	rotated := false
	if rotate != "" && rotate != existing.Annotations[AnnotationRotated] {
		// A Secret adopted now records the current request as handled: the
		// annotation predates tokensmith's care of this Secret.
		if !adopting {
			for _, k := range credentialKeys(oc) {
				v, err := credstore.RandomSecret(secretBytes)
				if err != nil {
					return nil, err
				}
				desired.Data[k] = []byte(v)
			}
			rotated = true
		}
		if desired.Annotations == nil {
			desired.Annotations = map[string]string{}
		}
		desired.Annotations[AnnotationRotated] = rotate
	}

	if equality.Semantic.DeepEqual(existing.ObjectMeta, desired.ObjectMeta) && equality.Semantic.DeepEqual(existing.Data, desired.Data) {
		return existing, nil
	}
	if err := r.Client.Update(ctx, desired); err != nil {
		return nil, fmt.Errorf("updating Secret %s: %w", key, err)
	}
	switch {
	case adopting:
		r.event(oc, corev1.EventTypeNormal, EventAdopted, actionUpdate, "Adopted the credentials in Secret %s", key.Name)
	case rotated:
		r.event(oc, corev1.EventTypeNormal, EventRotated, actionRotate, "Rotated the credentials in Secret %s; the previous ones work for %s", key.Name, gracePeriod(oc))
	}
	if len(filled) > 0 {
		r.event(oc, corev1.EventTypeNormal, EventFilledIn, actionUpdate, "Generated %s in Secret %s", strings.Join(filled, ", "), key.Name)
	}
	return desired, nil
}

// createConsumerSecret generates every credential and creates the Secret. It
// returns (nil, nil) when the Secret already exists.
//
// A consumer Secret deleted by hand (recreated is true) is recreated with NEW
// secrets under the SAME client id, and the verifier treats it as a rotation:
// the old secrets keep working for spec.rotationGracePeriod, then stop. Why:
//   - the old plaintext is gone from the cluster (the verifier holds only
//     digests), so it cannot be put back; the only alternatives are new
//     credentials or none, and "none" leaves every pod that mounts the Secret
//     unable to start (or, with a volume, stuck on stale files) until a person
//     acts, while the client is still declared in the OAuthClient;
//   - running applications that read the old secret before the deletion keep
//     working for the grace period, exactly as after the rotate annotation or
//     a hand edit of the Secret: one rule for every way credentials change,
//     and the owner sets its length (0s cuts the old secret off at once);
//   - deletion is not a revocation: to take a client away, delete the
//     OAuthClient (its finalizer removes the verifier); to cut off a leaked
//     secret, set rotationGracePeriod to 0s and rotate.
//
// A Warning event, ConsumerSecretRecreated, tells a person that applications
// holding the old secret must re-read the Secret before the grace period ends.
// It is called only after the API server itself (never just the cache, which
// holds only labelled Secrets and may lag) said the Secret does not exist, so a
// restart or a lagging cache can never be mistaken for a deletion; and a
// Secret created since then makes the Create fail with AlreadyExists rather
// than be replaced. (A second GET here used to repeat that question: one
// request in eight per new OAuthClient, for nothing the Create does not
// already guarantee.)
func (r *OAuthClientReconciler) createConsumerSecret(ctx context.Context, oc *authv1alpha1.OAuthClient, key types.NamespacedName, clientID string, recreated bool) (*corev1.Secret, error) {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: key.Namespace,
			Name:      key.Name,
			Labels:    map[string]string{authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{credstore.KeyClientID: []byte(clientID)},
	}
	if rotate := oc.Annotations[authv1alpha1.AnnotationRotate]; rotate != "" {
		s.Annotations = map[string]string{AnnotationRotated: rotate}
	}
	if r.Options.TokenURL != "" {
		s.Data[credstore.KeyTokenURL] = []byte(r.Options.TokenURL)
	}
	for _, k := range credentialKeys(oc) {
		v, err := credstore.RandomSecret(secretBytes)
		if err != nil {
			return nil, err
		}
		s.Data[k] = []byte(v)
	}
	if err := controllerutil.SetControllerReference(oc, s, r.Scheme); err != nil {
		return nil, err
	}
	if err := r.Client.Create(ctx, s); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("creating Secret %s: %w", key, err)
	}
	if recreated {
		if grace := gracePeriod(oc); grace > 0 {
			r.event(oc, corev1.EventTypeWarning, EventConsumerSecretRecreated, actionCreate,
				"Secret %s was deleted; generated new credentials into it under the same client id. The previous ones work for %s: "+
					"applications must re-read the Secret before then", key.Name, grace)
		} else {
			r.event(oc, corev1.EventTypeWarning, EventConsumerSecretRecreated, actionCreate,
				"Secret %s was deleted; generated new credentials into it under the same client id. The previous ones no longer work "+
					"(rotationGracePeriod is 0s): applications must re-read the Secret", key.Name)
		}
		return s, nil
	}
	r.event(oc, corev1.EventTypeNormal, EventGenerated, actionCreate, "Generated credentials into Secret %s", key.Name)
	return s, nil
}

func gracePeriod(oc *authv1alpha1.OAuthClient) time.Duration {
	if oc.Spec.RotationGracePeriod != nil && oc.Spec.RotationGracePeriod.Duration >= 0 {
		return oc.Spec.RotationGracePeriod.Duration
	}
	return defaultGracePeriod
}

// currentDigests digests the credentials in the consumer Secret.
func currentDigests(oc *authv1alpha1.OAuthClient, s *corev1.Secret) (credstore.SecretDigests, string) {
	for _, k := range credentialKeys(oc) {
		if len(s.Data[k]) == 0 || len(s.Data[k]) > maxValueLength {
			return credstore.SecretDigests{}, fmt.Sprintf("Secret %s has no usable %s", s.Name, k)
		}
	}
	d := credstore.SecretDigests{ClientSecret: credstore.DigestOf(credstore.PurposeClientSecret, string(s.Data[credstore.KeyClientSecret]))}
	if hasGrant(oc, authv1alpha1.GrantSession) {
		k := credstore.DigestOf(credstore.PurposeAPIKey, string(s.Data[credstore.KeyAPIKey]))
		sec := credstore.DigestOf(credstore.PurposeAPISecret, string(s.Data[credstore.KeyAPISecret]))
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

// ensureVerifier writes the client verifier that follows the consumer Secret.
// When the Secret's credentials differ from the verifier's current ones (a
// rotation, or an edit by hand) the old digests stay, with an expiry, for the
// grace period. It returns when to come back to drop an expired digest.
func (r *OAuthClientReconciler) ensureVerifier(ctx context.Context, oc *authv1alpha1.OAuthClient, consumerName string, current credstore.SecretDigests, clientID string, now time.Time) (time.Duration, error) {
	key := r.verifierKey(oc)
	existing, err := r.secrets().get(ctx, key)
	if err != nil {
		return 0, err
	}
	var old credstore.ClientVerifier
	hasOld := existing != nil && credstore.Decode(existing.Data[credstore.DataKey], &old) == nil && len(old.Secrets) > 0

	secrets := []credstore.SecretDigests{current}
	if hasOld {
		if !sameDigests(old.Secrets[0], current) {
			grace := gracePeriod(oc)
			if grace > 0 {
				prev := old.Secrets[0]
				expires := now.Add(grace).Truncate(time.Second)
				prev.ExpiresAt = &expires
				secrets = append(secrets, prev)
			}
			t := metav1.NewTime(now.Truncate(time.Second))
			oc.Status.LastRotationTime = &t
			r.event(oc, corev1.EventTypeNormal, EventSecretChanged, actionUpdate,
				"The verifier follows the new credentials in Secret %s; the previous ones work for %s", consumerName, grace)
		}
		for _, p := range old.Secrets[1:] {
			if p.ExpiresAt != nil && p.ExpiresAt.After(now) && len(secrets) <= maxPreviousSecrets {
				secrets = append(secrets, p)
			}
		}
	}

	doc, err := credstore.Encode(buildClientVerifier(oc, clientID, secrets))
	if err != nil {
		return 0, err
	}
	desired := verifierSecret(key.Namespace, key.Name, credstore.TypeClientVerifier, ownerString(oc), doc)
	if _, err := applySecret(ctx, r.Client, r.secrets(), existing, desired); err != nil {
		return 0, err
	}

	var requeue time.Duration
	oc.Status.PreviousSecretExpiresAt = nil
	for _, p := range secrets[1:] {
		if d := p.ExpiresAt.Sub(now); requeue == 0 || d < requeue {
			// One second late, so the digest has surely expired when we look again.
			requeue = d + time.Second
		}
		if oc.Status.PreviousSecretExpiresAt == nil || p.ExpiresAt.After(oc.Status.PreviousSecretExpiresAt.Time) {
			t := metav1.NewTime(*p.ExpiresAt)
			oc.Status.PreviousSecretExpiresAt = &t
		}
	}
	return requeue, nil
}

// buildClientVerifier is deterministic: the same spec and digests give the
// same bytes, so an unchanged verifier is never written again.
func buildClientVerifier(oc *authv1alpha1.OAuthClient, clientID string, secrets []credstore.SecretDigests) credstore.ClientVerifier {
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

// objectRef identifies obj itself in its verifier: tokens are bound to its
// uid, so that a deleted object re-created under the same name, client id or
// username never inherits the old one's tokens (issue 15). Both values are
// fixed for the object's life, so the verifier stays deterministic.
func objectRef(obj metav1.Object) credstore.ObjectRef {
	ref := credstore.ObjectRef{UID: string(obj.GetUID())}
	if c := obj.GetCreationTimestamp(); !c.IsZero() {
		t := c.UTC()
		ref.Created = &t
	}
	return ref
}

// sortedSet returns a sorted copy without duplicates (nil when empty), so the
// order someone wrote a list in never causes a write.
func sortedSet(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

// clientClaims are the identifiers oc asks for: clientID (when known) and its numericID.
func clientClaims(oc *authv1alpha1.OAuthClient, clientID string) []claim {
	var claims []claim
	if clientID != "" {
		claims = append(claims, claim{claimClientID(clientID), fmt.Sprintf("client id %q", clientID)})
	}
	if n := oc.Spec.NumericID; n != nil {
		claims = append(claims, claim{claimNumericID(*n), fmt.Sprintf("numericID %d", *n)})
	}
	return claims
}

func claimKeys(claims []claim) map[string]bool {
	keys := make(map[string]bool, len(claims))
	for _, c := range claims {
		keys[c.key] = true
	}
	return keys
}

// conflictMessage says which identifier is taken, and never by whom.
func conflictMessage(taken string) string {
	return fmt.Sprintf("The %s is already taken: an identifier stays with whoever claimed it first. Choose another", taken)
}

// heldByVerifier reports whether another OAuthClient serves key from a
// verifier it holds: the holder before claim records existed (an upgrade)
// keeps the identifier, and takes its record on its next reconcile.
func (r *OAuthClientReconciler) heldByVerifier(ctx context.Context, obj client.Object, key string) (bool, error) {
	var list authv1alpha1.OAuthClientList
	if err := r.Client.List(ctx, &list, client.MatchingFields{indexClaim: key}); err != nil {
		return false, err
	}
	for i := range list.Items {
		other := &list.Items[i]
		if other.UID == obj.GetUID() {
			continue
		}
		s, err := r.secrets().get(ctx, r.verifierKey(other))
		if err != nil {
			return false, err
		}
		var v credstore.ClientVerifier
		if s == nil || credstore.Decode(s.Data[credstore.DataKey], &v) != nil || v.PolicyDenied {
			// A verifier marked policyDenied serves nothing, and holds nothing.
			continue
		}
		if claimClientID(v.ClientID) == key || v.NumericID != 0 && claimNumericID(v.NumericID) == key {
			return true, nil
		}
	}
	return false, nil
}
