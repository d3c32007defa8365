package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/controllers/internal/desired"
	"github.com/tokensmith/tokensmith/internal/password"
)

// userReconciler keeps, for each User, the user verifier in the server
// namespace (and a generated password Secret when the User names none).
//
// It reconciles on status changes too: the token server patches
// status.devices and status.lockedUntil, and every replica learns of them
// only through the verifier this reconciler mirrors them into.
type userReconciler struct {
	credentialReconciler
	// HashParams are the argon2id costs of new hashes; zero means password.Default.
	HashParams password.Params
}

// SetupWithManager registers the controller; see watchKind.
func (r *userReconciler) SetupWithManager(mgr ctrl.Manager, metaCache cache.Cache) error {
	return watchKind(mgr, metaCache, "user", r.Options.ServerNamespace, userClaimKind, r)
}

func (r *userReconciler) claims() claimer { return r.claimerOf(userClaimKind) }

func (r *userReconciler) verifierKey(u *authv1alpha1.User) types.NamespacedName {
	return r.verifierKeyOf(userClaimKind, u)
}

func (r *userReconciler) lifecycle() lifecycle[*authv1alpha1.User] {
	return lifecycleOf(r.credentialReconciler, userClaimKind,
		func(u *authv1alpha1.User) any { return u.Status }, r.setNotReady)
}

// Reconcile implements reconcile.Reconciler: the shared lifecycle around reconcileUser.
func (r *userReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return r.lifecycle().reconcile(ctx, req.NamespacedName, &authv1alpha1.User{}, r.reconcileUser)
}

// reconcileUser claims the username, reads (or generates) the password,
// writes the verifier, and says whether the token server can log the user in.
func (r *userReconciler) reconcileUser(ctx context.Context, u *authv1alpha1.User) (ctrl.Result, error) {
	now := r.Options.now()
	u.Status.ObservedGeneration = u.Generation
	// Policies first: a User no TokenPolicy allows claims and issues nothing.
	if denied, err := r.denyUser(ctx, u); err != nil || denied {
		return ctrl.Result{}, err
	}
	claims := userClaims(u)
	if taken, err := r.claims().acquire(ctx, u, claims); err != nil || taken != "" {
		return ctrl.Result{}, r.lifecycle().refuseConflict(ctx, u, now, taken, err)
	}

	secretName, key := desired.PasswordSecretKey(u)
	// A password was hashed from this Secret before: if it is gone, it was deleted.
	issued := u.Status.PasswordSecretName == secretName && u.Status.CredentialGeneration > 0
	u.Status.PasswordSecretName = secretName
	pwSecret, problem, err := r.passwordSecret(ctx, u, types.NamespacedName{Namespace: u.Namespace, Name: secretName}, key, issued)
	if err != nil {
		return ctrl.Result{}, err
	}
	if problem != "" {
		r.setNotReady(u, now, authv1alpha1.ReasonForeignSecret, eventForeignSecret, actionRefuse, problem)
		return ctrl.Result{}, nil
	}
	pw := ""
	if pwSecret != nil {
		pw = string(pwSecret.Data[key])
	}
	if pw == "" {
		// The verifier is left as it is: see keptWhileWaiting.
		r.setNotReady(u, now, authv1alpha1.ReasonWaitingForSecret, eventWaitingForSecret, actionWait,
			fmt.Sprintf("Waiting for Secret %s to hold the key %q", secretName, key)+keptWhileWaiting(ctx, r.Client, r.verifierKey(u)))
		return ctrl.Result{}, nil
	}
	if len(pw) > password.MaxLength {
		r.setNotReady(u, now, authv1alpha1.ReasonInvalid, eventInvalid, actionRefuse,
			fmt.Sprintf("The password in Secret %s is longer than %d bytes", secretName, password.MaxLength))
		return ctrl.Result{}, nil
	}

	writtenAt, err := r.ensureVerifier(ctx, u, pwSecret, pw, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.claims().release(ctx, u, claimKeys(claims)); err != nil {
		return ctrl.Result{}, err
	}
	if wait := r.Options.propagating(writtenAt, now); wait > 0 {
		setPropagating(&u.Status.Conditions, u.Generation, now, r.Options.PropagationAllowance)
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	setUserServed(u, now)
	return ctrl.Result{}, nil
}
