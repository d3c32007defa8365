package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/controllers/internal/desired"
	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/internal/password"
)

// passwordSecret returns the Secret holding u's password, or nil when a
// referenced Secret does not exist yet. Without a reference it generates the
// password once into "<name>-password", owned by u. A "<name>-password"
// Secret that exists already is used only if tokensmith may write to it (see
// adoptProblem; a "password" key alone does not make it tokensmith's, since
// so many Secrets have one); otherwise problem says why, and it is not touched.
//
// A generated password Secret deleted by hand (recreated is true) is
// recreated with a new password, like an OAuthClient's consumer Secret, but
// with no grace period: a new password is a password change, which ends the
// user's sessions at once (the verifier bumps the credential generation).
// A Warning event says so.
func (r *userReconciler) passwordSecret(ctx context.Context, u *authv1alpha1.User, key types.NamespacedName, dataKey string, recreated bool) (s *corev1.Secret, problem string, err error) {
	s, err = r.secrets().get(ctx, key)
	if err != nil || u.Spec.PasswordSecretRef != nil {
		return s, "", err
	}
	if s == nil {
		// secrets().get asked the API server, not only the cache: it is
		// safe to generate.
		pw, err := credstore.RandomSecret(secretBytes)
		if err != nil {
			return nil, "", err
		}
		s = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: key.Namespace,
				Name:      key.Name,
				Labels:    map[string]string{authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue},
			},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{dataKey: []byte(pw)},
		}
		if err := controllerutil.SetControllerReference(u, s, r.Scheme); err != nil {
			return nil, "", err
		}
		err = r.Client.Create(ctx, s)
		if err == nil {
			if recreated {
				emit(r.Recorder, u, corev1.EventTypeWarning, eventConsumerSecretRecreated, actionCreate,
					"Secret %s was deleted; generated a new password into it, and every session of this user has ended", key.Name)
			} else {
				emit(r.Recorder, u, corev1.EventTypeNormal, eventGenerated, actionCreate, "Generated a password into Secret %s", key.Name)
			}
			return s, "", nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, "", fmt.Errorf("creating Secret %s: %w", key, err)
		}
		s = &corev1.Secret{}
		if err := r.APIReader.Get(ctx, key, s); err != nil {
			return nil, "", err
		}
	}

	if problem := adoptProblem(u, "User", s, false, "",
		"Set spec.passwordSecretRef to read the password from it"); problem != "" {
		return nil, problem, nil
	}
	// Adopt an existing Secret of that name: label it (never own it: only a
	// Secret tokensmith created goes with its User), and fill in the password
	// only if it has none.
	next := s.DeepCopy()
	if next.Labels == nil {
		next.Labels = map[string]string{}
	}
	next.Labels[authv1alpha1.LabelManagedBy] = authv1alpha1.ManagedByValue
	if len(next.Data[dataKey]) == 0 {
		pw, err := credstore.RandomSecret(secretBytes)
		if err != nil {
			return nil, "", err
		}
		if next.Data == nil {
			next.Data = map[string][]byte{}
		}
		next.Data[dataKey] = []byte(pw)
	}
	if equality.Semantic.DeepEqual(s.ObjectMeta, next.ObjectMeta) && equality.Semantic.DeepEqual(s.Data, next.Data) {
		return s, "", nil
	}
	if err := r.Client.Update(ctx, next); err != nil {
		return nil, "", fmt.Errorf("updating Secret %s: %w", key, err)
	}
	emit(r.Recorder, u, corev1.EventTypeNormal, eventAdopted, actionUpdate, "Adopted Secret %s for the password", key.Name)
	return next, "", nil
}

// ensureVerifier writes u's verifier. The argon2id hash is the expensive part
// and is computed only when the password may have changed: the verifier
// remembers which version of the password Secret it hashed (PasswordSource),
// and a new version whose password still verifies (a label was added, another
// key changed) keeps the old hash and the old credential generation.
//
// It returns when the verifier's data last changed (see applyVerifier).
func (r *userReconciler) ensureVerifier(ctx context.Context, u *authv1alpha1.User, pwSecret *corev1.Secret, pw string, now time.Time) (time.Time, error) {
	key := r.verifierKey(u)
	existing, err := r.secrets().get(ctx, key)
	if err != nil {
		return time.Time{}, err
	}
	var old credstore.UserVerifier
	hasOld := existing != nil && credstore.Decode(existing.Data[credstore.DataKey], &old) == nil

	source := string(pwSecret.UID) + "/" + pwSecret.ResourceVersion
	hash := old.PasswordHash
	// Never count backwards, even if someone deleted the verifier: a refresh
	// token of an old generation must not come back to life.
	generation := max(old.CredentialGeneration, u.Status.CredentialGeneration)
	bump := false
	if !hasOld || old.PasswordSource != source || hash == "" {
		same := false
		if hash != "" {
			same, _ = password.Verify(hash, pw)
		}
		if !same {
			params := r.HashParams
			if params == (password.Params{}) {
				params = password.Default
			}
			if hash, err = password.Hash(pw, params); err != nil {
				return time.Time{}, err
			}
			bump = true
			t := metav1.NewTime(now.Truncate(time.Second))
			u.Status.PasswordChangedTime = &t
			if hasOld {
				emit(r.Recorder, u, corev1.EventTypeNormal, eventPasswordChanged, actionUpdate,
					"The password in Secret %s changed; every session of this user has ended", pwSecret.Name)
			}
		}
	}
	if hasOld && !old.Disabled && u.Spec.Disabled {
		bump = true
	}
	if bump || generation == 0 {
		generation++
	}
	u.Status.CredentialGeneration = generation

	doc, err := credstore.Encode(desired.UserVerifier(u, hash, source, generation))
	if err != nil {
		return time.Time{}, err
	}
	want := verifierSecret(key.Namespace, key.Name, credstore.TypeUserVerifier, ownerString(u), doc)
	return applyVerifier(ctx, r.Client, r.secrets(), existing, want, now)
}
