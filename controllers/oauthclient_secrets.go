package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/controllers/internal/desired"
	"github.com/tokensmith/tokensmith/internal/credstore"
)

// secretBytes is the entropy of every generated secret: 256 bits.
const secretBytes = 32

// unadoptable explains why oc may not write into the existing Secret s, or "":
// see adoptProblem. A client's own keys are a CLIENT_SECRET.
func (r *oauthClientReconciler) unadoptable(oc *authv1alpha1.OAuthClient, s *corev1.Secret) string {
	return adoptProblem(oc, "OAuthClient", s, len(s.Data[credstore.KeyClientSecret]) > 0,
		", and it holds no "+credstore.KeyClientSecret, "Choose another spec.secretName")
}

// ensureConsumerSecret makes the consumer Secret complete without ever
// replacing a credential it holds: create only when the API server has none,
// otherwise adopt it and fill in what is missing. It also carries out a
// rotation requested by the rotate annotation.
//
// issued says that credentials were already handed out through this Secret:
// if it is gone now, someone deleted it (see createConsumerSecret).
func (r *oauthClientReconciler) ensureConsumerSecret(ctx context.Context, oc *authv1alpha1.OAuthClient, key types.NamespacedName, existing *corev1.Secret, clientID string, issued bool) (*corev1.Secret, error) {
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
	next := existing.DeepCopy()
	adopting := existing.Labels[authv1alpha1.LabelManagedBy] != authv1alpha1.ManagedByValue
	if next.Labels == nil {
		next.Labels = map[string]string{}
	}
	next.Labels[authv1alpha1.LabelManagedBy] = authv1alpha1.ManagedByValue
	if next.Data == nil {
		next.Data = map[string][]byte{}
	}

	filled, removed, err := r.fillConsumerData(oc, next.Data, clientID)
	if err != nil {
		return nil, err
	}
	rotated, err := rotateConsumerData(oc, existing, next, adopting)
	if err != nil {
		return nil, err
	}

	if equality.Semantic.DeepEqual(existing.ObjectMeta, next.ObjectMeta) && equality.Semantic.DeepEqual(existing.Data, next.Data) {
		return existing, nil
	}
	if rotated || len(filled) > 0 {
		if err := r.holdReady(ctx, oc); err != nil {
			return nil, err
		}
	}
	if err := r.Client.Update(ctx, next); err != nil {
		return nil, fmt.Errorf("updating Secret %s: %w", key, err)
	}
	switch {
	case adopting:
		r.event(oc, corev1.EventTypeNormal, eventAdopted, actionUpdate, "Adopted the credentials in Secret %s", key.Name)
	case rotated:
		r.event(oc, corev1.EventTypeNormal, eventRotated, actionRotate, "Rotated the credentials in Secret %s; the previous ones work for %s", key.Name, desired.GracePeriod(oc))
	}
	if len(filled) > 0 {
		r.event(oc, corev1.EventTypeNormal, eventFilledIn, actionUpdate, "Generated %s in Secret %s", strings.Join(filled, ", "), key.Name)
	}
	if len(removed) > 0 {
		r.event(oc, corev1.EventTypeNormal, eventSecretRemoved, actionUpdate,
			"Removed %s from Secret %s: the client authenticates only with its ServiceAccount token", strings.Join(removed, ", "), key.Name)
	}
	return next, nil
}

// fillConsumerData generates every credential data lacks, sets the token
// URL, and removes the secrets of a client that authenticates only with its
// ServiceAccount token. It returns the keys it generated and removed.
func (r *oauthClientReconciler) fillConsumerData(oc *authv1alpha1.OAuthClient, data map[string][]byte, clientID string) (filled, removed []string, err error) {
	for _, k := range append([]string{credstore.KeyClientID}, desired.CredentialKeys(oc)...) {
		if len(data[k]) > 0 {
			continue
		}
		v := clientID
		if k != credstore.KeyClientID {
			if v, err = credstore.RandomSecret(secretBytes); err != nil {
				return nil, nil, err
			}
		}
		data[k] = []byte(v)
		filled = append(filled, k)
	}
	if r.Options.TokenURL != "" {
		data[credstore.KeyTokenURL] = []byte(r.Options.TokenURL)
	}
	if !oc.Spec.Allows(authv1alpha1.AuthClientSecret) {
		// The client authenticates only with its ServiceAccount token: a
		// secret left here would be a credential that no longer works.
		for _, k := range desired.SecretKeys {
			if _, ok := data[k]; ok {
				delete(data, k)
				removed = append(removed, k)
			}
		}
	}
	return filled, removed, nil
}

// rotateConsumerData carries out a rotation the rotate annotation asks for and
// next has not handled yet, replacing every credential in next. It reports
// whether it replaced any. A Secret being adopted records the current request
// as handled without rotating: the annotation predates tokensmith's care of
// this Secret.
func rotateConsumerData(oc *authv1alpha1.OAuthClient, existing, next *corev1.Secret, adopting bool) (bool, error) {
	rotate := oc.Annotations[authv1alpha1.AnnotationRotate]
	if rotate == "" || rotate == existing.Annotations[annotationRotated] {
		return false, nil
	}
	rotated := false
	if !adopting && len(desired.CredentialKeys(oc)) > 0 {
		for _, k := range desired.CredentialKeys(oc) {
			v, err := credstore.RandomSecret(secretBytes)
			if err != nil {
				return false, err
			}
			next.Data[k] = []byte(v)
		}
		rotated = true
	}
	if next.Annotations == nil {
		next.Annotations = map[string]string{}
	}
	next.Annotations[annotationRotated] = rotate
	return rotated, nil
}

// holdReady turns a Ready OAuthClient Propagating in the API before its
// consumer Secret shows credentials the token servers do not have yet (a
// rotation, a recreated Secret, a key filled in). Whoever reads the new
// Secret and then finds the OAuthClient Ready knows every replica has had the
// propagation allowance to load them (the README's "What Ready promises");
// without this write the old Ready=True would stand until the reconcile's own
// status write, after the Secret. An object not Ready yet needs no hold.
func (r *oauthClientReconciler) holdReady(ctx context.Context, oc *authv1alpha1.OAuthClient) error {
	if r.Options.PropagationAllowance == 0 || !meta.IsStatusConditionTrue(oc.Status.Conditions, authv1alpha1.ConditionReady) {
		return nil
	}
	before := oc.DeepCopy()
	setPropagating(&oc.Status.Conditions, oc.Generation, r.Options.now(), r.Options.PropagationAllowance)
	if err := r.Client.Status().Patch(ctx, oc, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("writing status: %w", err)
	}
	return nil
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
func (r *oauthClientReconciler) createConsumerSecret(ctx context.Context, oc *authv1alpha1.OAuthClient, key types.NamespacedName, clientID string, recreated bool) (*corev1.Secret, error) {
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
		s.Annotations = map[string]string{annotationRotated: rotate}
	}
	if r.Options.TokenURL != "" {
		s.Data[credstore.KeyTokenURL] = []byte(r.Options.TokenURL)
	}
	for _, k := range desired.CredentialKeys(oc) {
		v, err := credstore.RandomSecret(secretBytes)
		if err != nil {
			return nil, err
		}
		s.Data[k] = []byte(v)
	}
	if err := controllerutil.SetControllerReference(oc, s, r.Scheme); err != nil {
		return nil, err
	}
	if err := r.holdReady(ctx, oc); err != nil {
		return nil, err
	}
	if err := r.Client.Create(ctx, s); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("creating Secret %s: %w", key, err)
	}
	if recreated {
		if grace := desired.GracePeriod(oc); grace > 0 {
			r.event(oc, corev1.EventTypeWarning, eventConsumerSecretRecreated, actionCreate,
				"Secret %s was deleted; generated new credentials into it under the same client id. The previous ones work for %s: "+
					"applications must re-read the Secret before then", key.Name, grace)
		} else {
			r.event(oc, corev1.EventTypeWarning, eventConsumerSecretRecreated, actionCreate,
				"Secret %s was deleted; generated new credentials into it under the same client id. The previous ones no longer work "+
					"(rotationGracePeriod is 0s): applications must re-read the Secret", key.Name)
		}
		return s, nil
	}
	r.event(oc, corev1.EventTypeNormal, eventGenerated, actionCreate, "Generated credentials into Secret %s", key.Name)
	return s, nil
}

// ensureVerifier writes the client verifier that follows the consumer Secret.
// When the Secret's credentials differ from the verifier's current ones (a
// rotation, or an edit by hand) the old digests stay, with an expiry, for the
// grace period. It returns when to come back to drop an expired digest, and
// when the verifier's data last changed (see applyVerifier).
func (r *oauthClientReconciler) ensureVerifier(ctx context.Context, oc *authv1alpha1.OAuthClient, consumerName string, current credstore.SecretDigests, clientID string, now time.Time) (time.Duration, time.Time, error) {
	key := r.verifierKey(oc)
	existing, err := r.secrets().get(ctx, key)
	if err != nil {
		return 0, time.Time{}, err
	}
	var old credstore.ClientVerifier
	if existing == nil || credstore.Decode(existing.Data[credstore.DataKey], &old) != nil {
		old.Secrets = nil
	}
	grace := desired.GracePeriod(oc)
	secrets, changed := desired.ClientDigests(oc, old.Secrets, current, now)
	if changed {
		t := metav1.NewTime(now.Truncate(time.Second))
		oc.Status.LastRotationTime = &t
		r.event(oc, corev1.EventTypeNormal, eventSecretChanged, actionUpdate,
			"The verifier follows the new credentials in Secret %s; the previous ones work for %s", consumerName, grace)
	}

	doc, err := credstore.Encode(desired.ClientVerifier(oc, clientID, secrets))
	if err != nil {
		return 0, time.Time{}, err
	}
	want := verifierSecret(key.Namespace, key.Name, credstore.TypeClientVerifier, ownerString(oc), doc)
	writtenAt, err := applyVerifier(ctx, r.Client, r.secrets(), existing, want, now)
	if err != nil {
		return 0, time.Time{}, err
	}

	requeue, latest := desired.Expiry(secrets, now)
	oc.Status.PreviousSecretExpiresAt = nil
	if latest != nil {
		t := metav1.NewTime(*latest)
		oc.Status.PreviousSecretExpiresAt = &t
	}
	return requeue, writtenAt, nil
}
