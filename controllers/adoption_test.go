package controllers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/credstore"
)

// untouched checks, for a while, that nobody wrote to the Secret s.
func untouched(t *testing.T, s *corev1.Secret) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		now := getSecret(t, s.Namespace, s.Name)
		if now.ResourceVersion != s.ResourceVersion {
			t.Fatalf("Secret %s was written: labels %v, owners %v, keys %v", s.Name, now.Labels, now.OwnerReferences, keysOf(now))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitWarning(t *testing.T, ns, name, reason string) *eventsv1.Event {
	t.Helper()
	var found *eventsv1.Event
	eventually(t, func() error {
		var evs eventsv1.EventList
		if err := k8s.List(context.Background(), &evs, client.InNamespace(ns)); err != nil {
			return err
		}
		for i, e := range evs.Items {
			if e.Reason == reason && e.Regarding.Name == name && e.Type == corev1.EventTypeWarning {
				found = &evs.Items[i]
				return nil
			}
		}
		return errors.New("no " + reason + " event yet")
	})
	return found
}

// TestSecretAdoption replays issue 15's finding 7: an OAuthClient (or User)
// naming someone else's Secret must not make the controller write to it, label
// it, or own it (garbage collection would delete it with the object).
func TestSecretAdoption(t *testing.T) {
	prodDB := func(ns string, annotations map[string]string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prod-db", Annotations: annotations},
			Data: map[string][]byte{"password": []byte("the-database-password")}}
		create(t, s)
		return s
	}
	cases := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"an OAuthClient naming a Secret that is not tokensmith's leaves it untouched and says why", func(t *testing.T) {
			ns := newNamespace(t)
			s := prodDB(ns, nil)
			oc := newOC(ns, "app", func(oc *authv1alpha1.OAuthClient) { oc.Spec.SecretName = "prod-db" })
			create(t, oc)
			waitReason(t, oc, authv1alpha1.ReasonForeignSecret)
			untouched(t, s)
			mustNotExist(t, types.NamespacedName{Namespace: serverNamespace, Name: credstore.ClientVerifierName(ns, "app")})
			e := waitWarning(t, ns, "app", eventForeignSecret)
			if !strings.Contains(e.Note, authv1alpha1.AnnotationAdopt) || strings.Contains(e.Note, "the-database-password") {
				t.Fatalf("event: %q", e.Note)
			}

			// Rotating changes nothing either.
			mergePatch(t, oc, `{"metadata":{"annotations":{"auth.tokensmith.io/rotate":"now"}}}`)
			waitReason(t, oc, authv1alpha1.ReasonForeignSecret)
			untouched(t, s)
		}},

		{"an OAuthClient naming another OAuthClient's consumer Secret leaves it untouched", func(t *testing.T) {
			ns := newNamespace(t)
			owner := newOC(ns, "owner")
			create(t, owner)
			waitReason(t, owner, authv1alpha1.ReasonIssued)
			s := getSecret(t, ns, "owner-credentials")
			intruder := newOC(ns, "intruder", func(oc *authv1alpha1.OAuthClient) { oc.Spec.SecretName = "owner-credentials" })
			create(t, intruder)
			waitReason(t, intruder, authv1alpha1.ReasonForeignSecret)
			untouched(t, s)
		}},

		{"a Secret annotated auth.tokensmith.io/adopt=true is adopted, keeping its keys, and never owned", func(t *testing.T) {
			ns := newNamespace(t)
			prodDB(ns, map[string]string{authv1alpha1.AnnotationAdopt: "true"})
			oc := newOC(ns, "app", func(oc *authv1alpha1.OAuthClient) { oc.Spec.SecretName = "prod-db" })
			create(t, oc)
			waitReason(t, oc, authv1alpha1.ReasonIssued)
			s := getSecret(t, ns, "prod-db")
			if string(s.Data["password"]) != "the-database-password" || len(s.Data[credstore.KeyClientSecret]) == 0 ||
				string(s.Data[credstore.KeyClientID]) != oc.Status.ClientID {
				t.Fatalf("adopted Secret keys %v", keysOf(s))
			}
			if len(s.OwnerReferences) != 0 {
				t.Fatalf("an adopted Secret got owner references %v", s.OwnerReferences)
			}
		}},

		{"a User whose generated password Secret name is taken leaves that Secret untouched", func(t *testing.T) {
			ns := newNamespace(t)
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-password"},
				Data: map[string][]byte{"password": []byte("the-database-password")}}
			create(t, s)
			u := newUser(ns, "db", "db-"+ns)
			create(t, u)
			waitReason(t, u, authv1alpha1.ReasonForeignSecret)
			untouched(t, s)
			mustNotExist(t, types.NamespacedName{Namespace: serverNamespace, Name: credstore.UserVerifierName(ns, "db")})
			waitWarning(t, ns, "db", eventForeignSecret)

			// The owner of the Secret opts in: adopted, with its password, and not owned.
			mergePatch(t, s, `{"metadata":{"annotations":{"auth.tokensmith.io/adopt":"true"}}}`)
			waitReason(t, u, authv1alpha1.ReasonIssued)
			s = getSecret(t, ns, "db-password")
			if len(s.OwnerReferences) != 0 || string(s.Data["password"]) != "the-database-password" {
				t.Fatalf("adopted password Secret: owners %v", s.OwnerReferences)
			}
			v, err := userVerifier(t, u)
			if err != nil || !verifies(t, v.PasswordHash, "the-database-password") {
				t.Fatalf("verifier %v", err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}
