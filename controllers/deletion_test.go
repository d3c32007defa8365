package controllers

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/credstore"
)

// waitEvent waits for an event of reason and type about the object named regarding in ns.
func waitEvent(t *testing.T, ns, regarding, reason, eventType string) *eventsv1.Event {
	t.Helper()
	var found *eventsv1.Event
	eventually(t, func() error {
		var evs eventsv1.EventList
		if err := k8s.List(context.Background(), &evs, client.InNamespace(ns)); err != nil {
			return err
		}
		for i, e := range evs.Items {
			if e.Reason == reason && e.Regarding.Name == regarding && e.Type == eventType {
				found = &evs.Items[i]
				return nil
			}
		}
		return fmt.Errorf("no %s event %s about %s yet", eventType, reason, regarding)
	})
	return found
}

func deleteObj(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Delete(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
}

// waitRecreated waits until the Secret ns/name exists again with a UID other than old's.
func waitRecreated(t *testing.T, old *corev1.Secret) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	eventually(t, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(old), s); err != nil {
			return err
		}
		if s.UID == old.UID {
			return fmt.Errorf("Secret %s not deleted yet", old.Name)
		}
		return nil
	})
	return s
}

func secretDigest(s *corev1.Secret) credstore.Digest {
	return credstore.DigestOf(credstore.PurposeClientSecret, string(s.Data[credstore.KeyClientSecret]))
}

// TestConsumerSecretDeletedByHand proves the documented policy for a deleted
// consumer Secret (README, "What happens when you delete a Secret").
func TestConsumerSecretDeletedByHand(t *testing.T) {
	t.Run("a generated client's Secret is recreated under the same client id and the old secret works for the grace period", func(t *testing.T) {
		ns := newNamespace(t)
		oc := newOC(ns, "app", withSession(nextNumericID()), func(oc *authv1alpha1.OAuthClient) {
			oc.Spec.RotationGracePeriod = &metav1.Duration{Duration: time.Hour}
		})
		create(t, oc)
		waitReason(t, oc, authv1alpha1.ReasonIssued)
		old := getSecret(t, ns, "app-credentials")

		deleteObj(t, old)
		s := waitRecreated(t, old)
		if !bytes.Equal(s.Data[credstore.KeyClientID], old.Data[credstore.KeyClientID]) {
			t.Fatalf("client id changed: %s -> %s", old.Data[credstore.KeyClientID], s.Data[credstore.KeyClientID])
		}
		for _, k := range []string{credstore.KeyClientSecret, credstore.KeyAPIKey, credstore.KeyAPISecret} {
			if len(s.Data[k]) == 0 || bytes.Equal(s.Data[k], old.Data[k]) {
				t.Fatalf("%s was not regenerated", k)
			}
		}
		e := waitEvent(t, ns, "app", eventConsumerSecretRecreated, corev1.EventTypeWarning)
		if !strings.Contains(e.Note, "1h0m0s") || containsAny(e.Note, string(s.Data[credstore.KeyClientSecret]), string(old.Data[credstore.KeyClientSecret])) {
			t.Fatalf("event note: %q", e.Note)
		}

		// The verifier accepts the new secret and, until the grace period ends, the old one.
		var v *credstore.ClientVerifier
		eventually(t, func() error {
			var err error
			if v, err = clientVerifier(t, oc); err != nil {
				return err
			}
			if err := digestOK(v, s); err != nil {
				return err
			}
			if len(v.Secrets) != 2 || !v.Secrets[1].ClientSecret.Equal(secretDigest(old)) {
				return fmt.Errorf("the old secret is not kept: %d digests", len(v.Secrets))
			}
			return nil
		})
		if want := clock.Now().Add(time.Hour).Truncate(time.Second); v.Secrets[1].ExpiresAt == nil || !v.Secrets[1].ExpiresAt.Equal(want) {
			t.Fatalf("old secret expires at %v, want %v", v.Secrets[1].ExpiresAt, want)
		}
		if v.ClientID != string(old.Data[credstore.KeyClientID]) {
			t.Fatalf("verifier client id %q", v.ClientID)
		}

		// After the grace period only the new secret is left.
		clock.Advance(time.Hour + time.Minute)
		poke(t, oc)
		eventually(t, func() error {
			v, err := clientVerifier(t, oc)
			if err != nil {
				return err
			}
			if len(v.Secrets) != 1 {
				return fmt.Errorf("%d digests after the grace period", len(v.Secrets))
			}
			return digestOK(v, s)
		})
	})

	t.Run("with rotationGracePeriod 0s the old secret stops at once", func(t *testing.T) {
		ns := newNamespace(t)
		oc := newOC(ns, "app", func(oc *authv1alpha1.OAuthClient) {
			oc.Spec.RotationGracePeriod = &metav1.Duration{}
		})
		create(t, oc)
		waitReason(t, oc, authv1alpha1.ReasonIssued)
		old := getSecret(t, ns, "app-credentials")
		deleteObj(t, old)
		s := waitRecreated(t, old)
		if !bytes.Equal(s.Data[credstore.KeyClientID], old.Data[credstore.KeyClientID]) || bytes.Equal(s.Data[credstore.KeyClientSecret], old.Data[credstore.KeyClientSecret]) {
			t.Fatal("want the same client id and a new secret")
		}
		eventually(t, func() error {
			v, err := clientVerifier(t, oc)
			if err != nil {
				return err
			}
			if len(v.Secrets) != 1 {
				return fmt.Errorf("%d digests, want only the new one", len(v.Secrets))
			}
			return digestOK(v, s)
		})
		e := waitEvent(t, ns, "app", eventConsumerSecretRecreated, corev1.EventTypeWarning)
		if !strings.Contains(e.Note, "no longer work") {
			t.Fatalf("event note: %q", e.Note)
		}
	})

	t.Run("a generated User password Secret gets a new password, the old one is refused and sessions end", func(t *testing.T) {
		ns := newNamespace(t)
		u := newUser(ns, "gina", "gina-"+ns)
		create(t, u)
		waitReason(t, u, authv1alpha1.ReasonIssued)
		old := getSecret(t, ns, "gina-password")
		before, err := userVerifier(t, u)
		if err != nil {
			t.Fatal(err)
		}
		deleteObj(t, old)
		s := waitRecreated(t, old)
		pw, oldPW := string(s.Data[credstore.KeyPassword]), string(old.Data[credstore.KeyPassword])
		if pw == "" || pw == oldPW {
			t.Fatal("want a new password")
		}
		eventually(t, func() error {
			v, err := userVerifier(t, u)
			if err != nil {
				return err
			}
			if !verifies(t, v.PasswordHash, pw) {
				return fmt.Errorf("the verifier does not hold the new password yet")
			}
			if verifies(t, v.PasswordHash, oldPW) {
				t.Fatal("the old password still verifies")
			}
			if v.CredentialGeneration <= before.CredentialGeneration {
				t.Fatalf("credential generation %d -> %d: sessions did not end", before.CredentialGeneration, v.CredentialGeneration)
			}
			return nil
		})
		e := waitEvent(t, ns, "gina", eventConsumerSecretRecreated, corev1.EventTypeWarning)
		if containsAny(e.Note, pw, oldPW) {
			t.Fatal("the event carries a password")
		}
	})

	t.Run("a provided Secret is never generated: the client waits and its verifier is kept", func(t *testing.T) {
		ns := newNamespace(t)
		create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "provided"},
			Data: map[string][]byte{credstore.KeyClientSecret: []byte("provided-secret-value")}})
		create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hal-pw"},
			Data: map[string][]byte{"pw": []byte("hal's password")}})
		oc := newOC(ns, "app", func(oc *authv1alpha1.OAuthClient) { oc.Spec.SecretName = "provided"; oc.Spec.ExistingSecret = true })
		u := newUser(ns, "hal", "hal-"+ns, withPasswordSecret("hal-pw"))
		create(t, oc)
		create(t, u)
		waitReason(t, oc, authv1alpha1.ReasonIssued)
		waitReason(t, u, authv1alpha1.ReasonIssued)
		// Issued is reported by the reconcile that writes the verifier; the
		// watch events of that reconcile's own writes (claim records, status)
		// may still be in flight. Compare from a settled state.
		settle(t, ns)
		verifiers := map[types.NamespacedName]*corev1.Secret{}
		for _, key := range []types.NamespacedName{
			{Namespace: serverNamespace, Name: credstore.ClientVerifierName(ns, "app")},
			{Namespace: serverNamespace, Name: credstore.UserVerifierName(ns, "hal")},
		} {
			verifiers[key] = getSecret(t, key.Namespace, key.Name)
		}

		deleteObj(t, getSecret(t, ns, "provided"))
		deleteObj(t, getSecret(t, ns, "hal-pw"))
		for _, obj := range []client.Object{oc, u} {
			waitReason(t, obj, authv1alpha1.ReasonWaitingForSecret)
			var conds []metav1.Condition
			switch o := obj.(type) {
			case *authv1alpha1.OAuthClient:
				conds = o.Status.Conditions
			case *authv1alpha1.User:
				conds = o.Status.Conditions
			}
			if c := meta.FindStatusCondition(conds, authv1alpha1.ConditionReady); !strings.Contains(c.Message, "stay valid") {
				t.Fatalf("%s: the message does not say the credentials stay valid: %q", obj.GetName(), c.Message)
			}
		}
		settle(t, ns)
		mustNotExist(t, types.NamespacedName{Namespace: ns, Name: "provided"})
		mustNotExist(t, types.NamespacedName{Namespace: ns, Name: "hal-pw"})
		for key, before := range verifiers {
			after := getSecret(t, key.Namespace, key.Name)
			if !bytes.Equal(after.Data[credstore.DataKey], before.Data[credstore.DataKey]) {
				t.Fatalf("verifier %s: its document changed while waiting", key.Name)
			}
			if after.ResourceVersion != before.ResourceVersion {
				t.Fatalf("verifier %s was written while waiting (labels or annotations %v -> %v)", key.Name, before.Labels, after.Labels)
			}
		}

		// The Secret coming back with the same values changes nothing.
		create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "provided"},
			Data: map[string][]byte{credstore.KeyClientSecret: []byte("provided-secret-value")}})
		waitReason(t, oc, authv1alpha1.ReasonIssued)
		v, err := clientVerifier(t, oc)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Secrets) != 1 || !v.Secrets[0].ClientSecret.Equal(credstore.DigestOf(credstore.PurposeClientSecret, "provided-secret-value")) {
			t.Fatalf("verifier after the Secret came back: %+v", v.Secrets)
		}
	})
}

// TestVerifierSecretDeletedByHand: a verifier deleted in the server namespace
// is written again from the consumer Secret, so the same credentials keep working.
func TestVerifierSecretDeletedByHand(t *testing.T) {
	ns := newNamespace(t)
	oc := newOC(ns, "app", withSession(nextNumericID()))
	u := newUser(ns, "ivy", "ivy-"+ns)
	create(t, oc)
	create(t, u)
	waitReason(t, oc, authv1alpha1.ReasonIssued)
	waitReason(t, u, authv1alpha1.ReasonIssued)
	consumer := getSecret(t, ns, "app-credentials")
	pw := string(getSecret(t, ns, "ivy-password").Data[credstore.KeyPassword])
	ocBefore, err := clientVerifier(t, oc)
	if err != nil {
		t.Fatal(err)
	}
	uBefore, err := userVerifier(t, u)
	if err != nil {
		t.Fatal(err)
	}
	ocVerifier := getSecret(t, serverNamespace, credstore.ClientVerifierName(ns, "app"))
	userVerifierSecret := getSecret(t, serverNamespace, credstore.UserVerifierName(ns, "ivy"))

	deleteObj(t, ocVerifier)
	deleteObj(t, userVerifierSecret)
	waitRecreated(t, ocVerifier)
	waitRecreated(t, userVerifierSecret)

	eventually(t, func() error {
		v, err := clientVerifier(t, oc)
		if err != nil {
			return err
		}
		if err := digestOK(v, consumer); err != nil {
			return err
		}
		if v.ClientID != ocBefore.ClientID || len(v.Secrets) != 1 || !v.Secrets[0].ClientSecret.Equal(ocBefore.Secrets[0].ClientSecret) {
			return fmt.Errorf("restored verifier differs: %+v", v)
		}
		return nil
	})
	eventually(t, func() error {
		v, err := userVerifier(t, u)
		if err != nil {
			return err
		}
		if !verifies(t, v.PasswordHash, pw) {
			return fmt.Errorf("the restored verifier does not accept the same password")
		}
		// Without the old hash the controller cannot tell the password is
		// unchanged: sessions end (documented), and the generation never
		// counts backwards, so no old refresh token comes back to life.
		if v.CredentialGeneration <= uBefore.CredentialGeneration {
			t.Fatalf("credential generation %d -> %d", uBefore.CredentialGeneration, v.CredentialGeneration)
		}
		return nil
	})
	// Nothing the application holds changed.
	if after := getSecret(t, ns, "app-credentials"); after.ResourceVersion != consumer.ResourceVersion {
		t.Fatal("restoring the verifier rewrote the consumer Secret")
	}
}

// TestFirstSecretAfterAConflictIsNotRecreated: a client refused for a
// conflict never had credentials, so the Secret it gets once the conflict is
// gone is generated, not reported as a deleted Secret recreated (whose old
// secret would still work for the grace period).
func TestFirstSecretAfterAConflictIsNotRecreated(t *testing.T) {
	ns, other := newNamespace(t), newNamespace(t)
	claim := func(oc *authv1alpha1.OAuthClient) { oc.Spec.ClientID = "claimed-" + ns }
	first := newOC(ns, "first", claim)
	create(t, first)
	waitReason(t, first, authv1alpha1.ReasonIssued)
	second := newOC(other, "second", claim)
	create(t, second)
	waitReason(t, second, authv1alpha1.ReasonConflict)

	deleteObj(t, first)
	waitReason(t, second, authv1alpha1.ReasonIssued)
	waitEvent(t, other, "second", eventGenerated, corev1.EventTypeNormal)
	var evs eventsv1.EventList
	if err := k8s.List(context.Background(), &evs, client.InNamespace(other)); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs.Items {
		if e.Reason == eventConsumerSecretRecreated {
			t.Fatalf("a Secret generated for the first time was reported as recreated: %q", e.Note)
		}
	}
}
