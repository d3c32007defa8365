package controllers

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/internal/password"
)

func newUser(ns, name, username string, mutate ...func(*authv1alpha1.User)) *authv1alpha1.User {
	u := &authv1alpha1.User{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: authv1alpha1.UserSpec{Username: username}}
	for _, m := range mutate {
		m(u)
	}
	return u
}

func withPasswordSecret(name string) func(*authv1alpha1.User) {
	return func(u *authv1alpha1.User) {
		u.Spec.PasswordSecretRef = &authv1alpha1.SecretKeyRef{Name: name, Key: "pw"}
	}
}

func verifies(t *testing.T, hash, pw string) bool {
	t.Helper()
	ok, err := password.Verify(hash, pw)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestUser(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		run  func(t *testing.T, ns string)
	}{
		{"generates a password once into <name>-password and hashes it with argon2id", func(t *testing.T, ns string) {
			u := newUser(ns, "alice", "alice-"+ns, func(u *authv1alpha1.User) {
				u.Spec.Scopes = []string{"b", "a"}
				u.Spec.Clients = []string{"web"}
			})
			create(t, u)
			waitReason(t, u, authv1alpha1.ReasonIssued)
			s := getSecret(t, ns, "alice-password")
			pw := string(s.Data[credstore.KeyPassword])
			if len(pw) < 43 || metav1.GetControllerOf(s) == nil || metav1.GetControllerOf(s).UID != u.UID ||
				s.Labels[authv1alpha1.LabelManagedBy] != authv1alpha1.ManagedByValue {
				t.Fatalf("password Secret: %d characters, owner %v, labels %v", len(pw), metav1.GetControllerOf(s), s.Labels)
			}
			v, err := userVerifier(t, u)
			if err != nil {
				t.Fatal(err)
			}
			if !verifies(t, v.PasswordHash, pw) || v.CredentialGeneration != 1 || u.Status.CredentialGeneration != 1 ||
				v.Username != "alice-"+ns || fmt.Sprint(v.Scopes) != "[a b]" || fmt.Sprint(v.Clients) != "[web]" ||
				v.PasswordSource != string(s.UID)+"/"+s.ResourceVersion {
				t.Errorf("verifier = %+v, status generation %d", v, u.Status.CredentialGeneration)
			}
			if u.Status.PasswordSecretName != "alice-password" || u.Status.PasswordChangedTime == nil {
				t.Errorf("status = %+v", u.Status)
			}
		}},

		{"a password change bumps the generation and the hash, while a no-op change keeps the hash byte-identical", func(t *testing.T, ns string) {
			pwSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bob-pw"}, Data: map[string][]byte{"pw": []byte("first password")}}
			create(t, pwSecret)
			u := newUser(ns, "bob", "bob-"+ns, withPasswordSecret("bob-pw"))
			create(t, u)
			waitReason(t, u, authv1alpha1.ReasonIssued)
			v1, err := userVerifier(t, u)
			if err != nil {
				t.Fatal(err)
			}

			// A new resourceVersion with the same password: verified, not rehashed.
			mergePatch(t, pwSecret, `{"metadata":{"labels":{"team":"blue"}},"data":{"unrelated":"eA=="}}`)
			var v2 *credstore.UserVerifier
			eventually(t, func() error {
				var err error
				if v2, err = userVerifier(t, u); err != nil {
					return err
				}
				if v2.PasswordSource == v1.PasswordSource {
					return errors.New("verifier has not seen the new resourceVersion")
				}
				return nil
			})
			if v2.PasswordHash != v1.PasswordHash || v2.CredentialGeneration != v1.CredentialGeneration {
				t.Fatalf("an unchanged password was rehashed: generation %d -> %d", v1.CredentialGeneration, v2.CredentialGeneration)
			}

			mergePatch(t, pwSecret, `{"data":{"pw":"c2Vjb25kIHBhc3N3b3Jk"}}`) // "second password"
			eventually(t, func() error {
				v3, err := userVerifier(t, u)
				if err != nil {
					return err
				}
				if v3.CredentialGeneration != v1.CredentialGeneration+1 {
					return fmt.Errorf("generation %d", v3.CredentialGeneration)
				}
				if v3.PasswordHash == v1.PasswordHash || !verifies(t, v3.PasswordHash, "second password") {
					return errors.New("hash does not follow the new password")
				}
				return nil
			})
			eventually(t, func() error {
				if err := k8s.Get(ctx, client.ObjectKeyFromObject(u), u); err != nil {
					return err
				}
				if u.Status.CredentialGeneration != v1.CredentialGeneration+1 {
					return fmt.Errorf("status.credentialGeneration %d", u.Status.CredentialGeneration)
				}
				return nil
			})
		}},

		{"waits for a password Secret that does not exist yet", func(t *testing.T, ns string) {
			u := newUser(ns, "carol", "carol-"+ns, withPasswordSecret("carol-pw"))
			create(t, u)
			waitReason(t, u, authv1alpha1.ReasonWaitingForSecret)
			mustNotExist(t, types.NamespacedName{Namespace: serverNamespace, Name: credstore.UserVerifierName(ns, "carol")})
			create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "carol-pw"}, Data: map[string][]byte{"pw": []byte("hunter2")}})
			waitReason(t, u, authv1alpha1.ReasonIssued)
		}},

		{"disabling bumps the generation, and status written by the token server reaches the verifier", func(t *testing.T, ns string) {
			u := newUser(ns, "dave", "dave-"+ns)
			create(t, u)
			waitReason(t, u, authv1alpha1.ReasonIssued)
			locked := metav1.NewTime(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC))
			status := fmt.Sprintf(`{"status":{"lockedUntil":%q,"devices":[{"name":"phone","firstSeen":"2030-01-01T00:00:00Z"}]}}`, locked.Format(time.RFC3339))
			if err := k8s.Status().Patch(ctx, u, client.RawPatch(types.MergePatchType, []byte(status))); err != nil {
				t.Fatal(err)
			}
			eventually(t, func() error {
				v, err := userVerifier(t, u)
				if err != nil {
					return err
				}
				if v.LockedUntil == nil || !v.LockedUntil.Equal(locked.Time) || fmt.Sprint(v.KnownDevices) != "[phone]" {
					return fmt.Errorf("verifier lockedUntil %v devices %v", v.LockedUntil, v.KnownDevices)
				}
				return nil
			})

			mergePatch(t, u, `{"spec":{"disabled":true,"deauthorizedDevices":["tablet"]}}`)
			waitReason(t, u, authv1alpha1.ReasonDisabled)
			v, err := userVerifier(t, u)
			if err != nil {
				t.Fatal(err)
			}
			if !v.Disabled || v.CredentialGeneration != 2 || fmt.Sprint(v.DeauthorizedDevices) != "[tablet]" {
				t.Errorf("verifier = %+v", v)
			}
			if u.Status.LockedUntil == nil || len(u.Status.Devices) != 1 {
				t.Errorf("the controller clobbered status written by the token server: %+v", u.Status)
			}
		}},

		{"refuses a username already claimed by an older User, and deletes the verifier with the User", func(t *testing.T, ns string) {
			first := newUser(ns, "erin", "erin-"+ns)
			create(t, first)
			waitReason(t, first, authv1alpha1.ReasonIssued)
			second := newUser(newNamespace(t), "erin2", "erin-"+ns)
			create(t, second)
			waitReason(t, second, authv1alpha1.ReasonConflict)
			mustNotExist(t, types.NamespacedName{Namespace: serverNamespace, Name: credstore.UserVerifierName(second.Namespace, "erin2")})

			if err := k8s.Delete(ctx, first); err != nil {
				t.Fatal(err)
			}
			eventually(t, func() error {
				_, err := userVerifier(t, first)
				if err == nil {
					return errors.New("verifier of a deleted User still exists")
				}
				return nil
			})
			waitReason(t, second, authv1alpha1.ReasonIssued)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newNamespace(t)) })
	}
}
