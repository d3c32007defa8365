package controllers

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/credstore"
)

// Finalizers and annotations private to the controller.
const (
	// finalizerVerifier holds an OAuthClient or User until its verifier Secret,
	// in another namespace and so beyond garbage collection, is deleted.
	finalizerVerifier = "auth.tokensmith.io/verifier"

	// annotationRotated on a consumer Secret records the value of the owner's
	// auth.tokensmith.io/rotate annotation that was last acted on. It lives on
	// the Secret, written together with the new credentials, so that a crash or
	// a restart can never rotate twice for one request.
	annotationRotated = "auth.tokensmith.io/rotated"
)

// Event reasons. Normal events tell what happened; Warning events ask a person to act.
const (
	// eventGenerated: new credentials were generated into the consumer Secret.
	eventGenerated = "Generated"
	// eventAdopted: a pre-existing Secret's credentials were taken over.
	eventAdopted = "Adopted"
	// eventFilledIn: keys missing from an existing Secret were generated.
	eventFilledIn = "FilledIn"
	// eventSecretRemoved: a client that may no longer authenticate with a
	// secret had its secrets removed from its consumer Secret.
	eventSecretRemoved = "SecretRemoved"
	// eventRotated: the rotate annotation produced new secrets.
	eventRotated = "Rotated"
	// eventSecretChanged: the consumer Secret's credentials changed (for example
	// by hand); the verifier now accepts them and the old ones until the grace period ends.
	eventSecretChanged = "SecretChanged"
	// eventPasswordChanged: a User's password changed; its sessions end.
	eventPasswordChanged = "PasswordChanged"
	// eventConflict (Warning): another object already holds the same identifier.
	eventConflict = "Conflict"
	// eventForeignSecret (Warning): the Secret named for the credentials exists
	// and is someone else's; tokensmith does not touch it.
	eventForeignSecret = "ForeignSecret"
	// eventWaitingForSecret (Warning): the Secret to read credentials from is missing or incomplete.
	eventWaitingForSecret = "WaitingForSecret"
	// eventInvalid (Warning): the Secret holds values that cannot be used.
	eventInvalid = "Invalid"
	// eventConsumerSecretRecreated (Warning): a consumer Secret that credentials
	// had been issued through was deleted, and was recreated with new ones;
	// applications holding the old ones must re-read it before they expire.
	eventConsumerSecretRecreated = "ConsumerSecretRecreated"
)

// Actions of the events.k8s.io API, which asks what the controller did.
const (
	actionCreate  = "Create"
	actionUpdate  = "Update"
	actionRotate  = "Rotate"
	actionWait    = "Wait"
	actionRefuse  = "Refuse"
	actionObserve = "Observe"
)

// secretReader reads Secrets from the label-selected cache first and falls
// back to the API server, which also sees Secrets tokensmith has not labelled
// and Secrets created so recently that the cache has not caught up.
type secretReader struct {
	cached client.Reader
	api    client.Reader
}

// get returns the Secret, or (nil, nil) when the API server says it does not exist.
func (r secretReader) get(ctx context.Context, key types.NamespacedName) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	err := r.cached.Get(ctx, key, s)
	if err == nil {
		return s, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, err
	}
	if err := r.api.Get(ctx, key, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return s, nil
}

// verifierSecret builds a verifier Secret in the server namespace.
func verifierSecret(namespace, name, secretType, owner string, doc []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace,
			Name:      name,
			Labels: map[string]string{
				authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue,
				credstore.LabelSecretType:   secretType,
			},
			Annotations: map[string]string{credstore.AnnotationOwner: owner},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{credstore.DataKey: doc},
	}
}

// applySecret makes the Secret at desired's key hold desired's labels,
// annotations and data, creating it when absent. existing is what the caller
// already read (nil when absent). It writes nothing when they already match,
// which is what keeps a no-op reconcile free of writes.
func applySecret(ctx context.Context, c client.Client, r secretReader, existing, desired *corev1.Secret) error {
	if existing == nil {
		err := c.Create(ctx, desired)
		if err == nil {
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating Secret %s/%s: %w", desired.Namespace, desired.Name, err)
		}
		// Created meanwhile (or the cache lags): read it back and compare.
		existing = &corev1.Secret{}
		if err := r.api.Get(ctx, client.ObjectKeyFromObject(desired), existing); err != nil {
			return err
		}
	}
	if secretMatches(existing, desired) {
		return nil
	}
	updated := existing.DeepCopy()
	if updated.Labels == nil {
		updated.Labels = map[string]string{}
	}
	maps.Copy(updated.Labels, desired.Labels)
	if updated.Annotations == nil {
		updated.Annotations = map[string]string{}
	}
	maps.Copy(updated.Annotations, desired.Annotations)
	updated.Data = desired.Data
	// Update, with the resourceVersion we read: if the cache was stale the API
	// server answers Conflict and the reconcile starts again from fresh data.
	if err := c.Update(ctx, updated); err != nil {
		return fmt.Errorf("updating Secret %s/%s: %w", desired.Namespace, desired.Name, err)
	}
	return nil
}

// applyVerifier is applySecret for a verifier Secret: when its data changes
// it is stamped credstore.AnnotationWrittenAt = now, and otherwise keeps its
// stamp. It returns when the data last changed: the start of the propagation
// allowance (Options.propagation). A verifier written before verifiers were
// stamped has the zero time: it has long been served.
func applyVerifier(ctx context.Context, c client.Client, r secretReader, existing, want *corev1.Secret, now time.Time) (time.Time, error) {
	stamp := now.UTC().Format(time.RFC3339Nano)
	writtenAt := now
	if existing != nil && bytes.Equal(existing.Data[credstore.DataKey], want.Data[credstore.DataKey]) {
		stamp = existing.Annotations[credstore.AnnotationWrittenAt]
		writtenAt, _ = time.Parse(time.RFC3339Nano, stamp)
	}
	if stamp != "" {
		want.Annotations[credstore.AnnotationWrittenAt] = stamp
	}
	return writtenAt, applySecret(ctx, c, r, existing, want)
}

// secretMatches reports whether existing already carries everything desired asks for.
func secretMatches(existing, desired *corev1.Secret) bool {
	for k, v := range desired.Labels {
		if existing.Labels[k] != v {
			return false
		}
	}
	for k, v := range desired.Annotations {
		if existing.Annotations[k] != v {
			return false
		}
	}
	if len(existing.Data) != len(desired.Data) {
		return false
	}
	for k, v := range desired.Data {
		if got, ok := existing.Data[k]; !ok || !bytes.Equal(got, v) {
			return false
		}
	}
	return true
}

// deleteSecret deletes a Secret the controller owns; absent is fine.
func deleteSecret(ctx context.Context, c client.Client, r secretReader, key types.NamespacedName) error {
	s, err := r.get(ctx, key)
	if err != nil || s == nil {
		return err
	}
	if err := c.Delete(ctx, s, client.Preconditions{UID: &s.UID}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting Secret %s/%s: %w", key.Namespace, key.Name, err)
	}
	return nil
}

// ownerString is the credstore.AnnotationOwner value of obj.
func ownerString(obj client.Object) string {
	return obj.GetNamespace() + "/" + obj.GetName()
}

// secretCached reports whether the cache holds the Secret at key.
func secretCached(ctx context.Context, c client.Reader, key types.NamespacedName) bool {
	return c.Get(ctx, key, &corev1.Secret{}) == nil
}

// keptWhileWaiting is the part of a WaitingForSecret message that says what
// happens to a verifier already written from a provided Secret that has since
// gone or lost a key: it is kept, unchanged. A provided Secret is written by
// someone else (a person, external-secrets, a Vault agent), and a missing one
// is far more often a sync in progress or an upgrade recreating it than a
// decision to revoke; the applications still hold the credentials, which
// tokensmith never generated and cannot replace. Dropping the verifier would
// turn every such blip into an outage, and it would not revoke anything that
// deleting the OAuthClient or User (or disabling the User) does not revoke
// properly. The message says so, so that Ready=False is not read as "refused".
func keptWhileWaiting(ctx context.Context, c client.Reader, verifier types.NamespacedName) string {
	if !secretCached(ctx, c, verifier) {
		return ""
	}
	return "; the credentials last read from it stay valid until then (delete the object to revoke them)"
}

// adoptProblem explains why tokensmith may not write into the existing Secret
// s on behalf of owner, or returns "". It may when:
//   - tokensmith created s for owner (owner's controller reference, or one
//     left by an earlier object of the same kind and name),
//   - s carries auth.tokensmith.io/adopt=true (whoever may write s said so),
//   - s is labelled as tokensmith's and nothing else controls it, or
//   - hasKeys: s already holds the kind's own credential keys and nothing else
//     controls it.
//
// Anything else is someone else's Secret (a database password, another
// object's credentials): writing to it would let anyone who may create an
// OAuthClient or User change Secrets they cannot touch.
//
// lacks says what s lacks for hasKeys (", and holds no CLIENT_SECRET"), and
// instead what the person can do instead of adopting it.
func adoptProblem(owner client.Object, kind string, s *corev1.Secret, hasKeys bool, lacks, instead string) string {
	if s.Annotations[authv1alpha1.AnnotationAdopt] == "true" {
		return ""
	}
	how := fmt.Sprintf("%s, or annotate the Secret %s=true to let tokensmith write to it", instead, authv1alpha1.AnnotationAdopt)
	if ref := metav1.GetControllerOf(s); ref != nil {
		if ref.UID == owner.GetUID() || ref.Kind == kind && ref.Name == owner.GetName() && strings.HasPrefix(ref.APIVersion, authv1alpha1.GroupVersion.Group+"/") {
			return ""
		}
		return fmt.Sprintf("Secret %s is controlled by another object; tokensmith leaves it alone. %s", s.Name, how)
	}
	if s.Labels[authv1alpha1.LabelManagedBy] == authv1alpha1.ManagedByValue || hasKeys {
		return ""
	}
	return fmt.Sprintf("Secret %s exists and was not created by tokensmith%s; tokensmith leaves it alone. %s", s.Name, lacks, how)
}

// consumerData is s's data, nil when s is (a Secret that does not exist).
func consumerData(s *corev1.Secret) map[string][]byte {
	if s == nil {
		return nil
	}
	return s.Data
}
