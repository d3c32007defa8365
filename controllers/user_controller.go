package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/controllers/internal/desired"
	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/internal/password"
)

// UserReconciler keeps, for each User, the user verifier in the server
// namespace (and a generated password Secret when the User names none).
//
// It reconciles on status changes too: the token server patches
// status.devices and status.lockedUntil, and every replica learns of them
// only through the verifier this reconciler mirrors them into.
type UserReconciler struct {
	Client    client.Client
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	Options   Options
	// HashParams are the argon2id costs of new hashes; zero means password.Default.
	HashParams password.Params
}

// SetupWithManager registers the controller; see OAuthClientReconciler.SetupWithManager.
func (r *UserReconciler) SetupWithManager(mgr ctrl.Manager, metaCache cache.Cache) error {
	m := secretMapper{
		reader:          mgr.GetCache(),
		serverNamespace: r.Options.ServerNamespace,
		verifierType:    credstore.TypeUserVerifier,
		list:            func() client.ObjectList { return &authv1alpha1.UserList{} },
		claimKind:       claimKindUser,
		claimIndex: func(claim string) (string, string) {
			return indexUsername, strings.TrimPrefix(claim, claimUsername(""))
		},
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("user").
		For(&authv1alpha1.User{}).
		Watches(&authv1alpha1.User{}, handler.EnqueueRequestsFromMapFunc(r.otherClaimants(mgr.GetCache()))).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(m.Map)).
		WatchesRawSource(metadataSource(metaCache, m)).
		Complete(r)
}

// otherClaimants maps a User to the other Users with the same username.
func (r *UserReconciler) otherClaimants(reader client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		u, ok := o.(*authv1alpha1.User)
		if !ok || u.Spec.Username == "" {
			return nil
		}
		var list authv1alpha1.UserList
		if err := reader.List(ctx, &list, client.MatchingFields{indexUsername: u.Spec.Username}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing Users by username")
			return nil
		}
		var reqs []reconcile.Request
		for i := range list.Items {
			if list.Items[i].UID != u.UID {
				reqs = append(reqs, requestFor(&list.Items[i]))
			}
		}
		return reqs
	}
}

func (r *UserReconciler) secrets() secretReader {
	return secretReader{cached: r.Client, api: r.APIReader}
}

func (r *UserReconciler) claims() claimer {
	return claimer{
		client: r.Client, apiReader: r.APIReader,
		serverNamespace: r.Options.ServerNamespace, kind: claimKindUser,
		newObject:      func() client.Object { return &authv1alpha1.User{} },
		heldByVerifier: r.heldByVerifier,
	}
}

func (r *UserReconciler) verifierKey(u *authv1alpha1.User) types.NamespacedName {
	return types.NamespacedName{Namespace: r.Options.ServerNamespace, Name: credstore.UserVerifierName(u.Namespace, u.Name)}
}

// Reconcile implements reconcile.Reconciler.
func (r *UserReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return requeueOnConflict(r.reconcile(ctx, req))
}

// reconcile: get, finalize on deletion, add the finalizer, work, status once.
func (r *UserReconciler) reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	u := &authv1alpha1.User{}
	if err := r.Client.Get(ctx, req.NamespacedName, u); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !u.DeletionTimestamp.IsZero() {
		if !controllerutil.ContainsFinalizer(u, FinalizerVerifier) {
			return ctrl.Result{}, nil
		}
		if err := deleteSecret(ctx, r.Client, r.secrets(), r.verifierKey(u)); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.claims().releaseAll(ctx, u); err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{}, removeFinalizer(ctx, r.Client, u)
	}
	if err := addFinalizer(ctx, r.Client, u); err != nil {
		return ctrl.Result{}, err
	}

	original := u.DeepCopy()
	defer func() {
		if err := patchStatus(ctx, r.Client, original, u, equality.Semantic.DeepEqual(original.Status, u.Status)); err != nil {
			retErr = errors.Join(retErr, err)
		}
	}()
	u.Status.ObservedGeneration = u.Generation
	return ctrl.Result{}, r.reconcileUser(ctx, u)
}

func (r *UserReconciler) reconcileUser(ctx context.Context, u *authv1alpha1.User) error {
	now := r.Options.now()
	claims := []claim{{claimUsername(u.Spec.Username), "username"}}
	taken, err := r.claims().acquire(ctx, u, claims)
	if err != nil {
		return err
	}
	if taken != "" {
		// The holder keeps working; this User gets no verifier. The message
		// never names the holder.
		if err := deleteSecret(ctx, r.Client, r.secrets(), r.verifierKey(u)); err != nil {
			return err
		}
		r.setNotReady(u, now, authv1alpha1.ReasonConflict, EventConflict, actionRefuse, conflictMessage(taken))
		return nil
	}

	secretName, key := desired.PasswordSecretKey(u)
	// A password was hashed from this Secret before: if it is gone, it was deleted.
	issued := u.Status.PasswordSecretName == secretName && u.Status.CredentialGeneration > 0
	u.Status.PasswordSecretName = secretName
	pwSecret, problem, err := r.passwordSecret(ctx, u, types.NamespacedName{Namespace: u.Namespace, Name: secretName}, key, issued)
	if err != nil {
		return err
	}
	if problem != "" {
		r.setNotReady(u, now, authv1alpha1.ReasonForeignSecret, EventForeignSecret, actionRefuse, problem)
		return nil
	}
	pw := ""
	if pwSecret != nil {
		pw = string(pwSecret.Data[key])
	}
	if pw == "" {
		// The verifier is left as it is: see keptWhileWaiting.
		r.setNotReady(u, now, authv1alpha1.ReasonWaitingForSecret, EventWaitingForSecret, actionWait,
			fmt.Sprintf("Waiting for Secret %s to hold the key %q", secretName, key)+keptWhileWaiting(ctx, r.Client, r.verifierKey(u)))
		return nil
	}
	if len(pw) > password.MaxLength {
		r.setNotReady(u, now, authv1alpha1.ReasonInvalid, EventInvalid, actionRefuse,
			fmt.Sprintf("The password in Secret %s is longer than %d bytes", secretName, password.MaxLength))
		return nil
	}

	if err := r.ensureVerifier(ctx, u, pwSecret, pw, now); err != nil {
		return err
	}
	if err := r.claims().release(ctx, u, claimKeys(claims)); err != nil {
		return err
	}
	if u.Spec.Disabled {
		setCondition(&u.Status.Conditions, u.Generation, now, metav1.ConditionFalse, authv1alpha1.ReasonDisabled,
			"The user is disabled: every login is refused and every session has ended")
		return nil
	}
	setReady(&u.Status.Conditions, u.Generation, now, authv1alpha1.ReasonIssued, "The token server can log this user in")
	return nil
}

// heldByVerifier reports whether another User serves key from a verifier
// written before claim records existed; see OAuthClientReconciler.heldByVerifier.
func (r *UserReconciler) heldByVerifier(ctx context.Context, obj client.Object, key string) (bool, error) {
	var list authv1alpha1.UserList
	if err := r.Client.List(ctx, &list, client.MatchingFields{indexUsername: strings.TrimPrefix(key, claimUsername(""))}); err != nil {
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
		var v credstore.UserVerifier
		if s != nil && credstore.Decode(s.Data[credstore.DataKey], &v) == nil && claimUsername(v.Username) == key {
			return true, nil
		}
	}
	return false, nil
}

func (r *UserReconciler) setNotReady(u *authv1alpha1.User, now time.Time, reason, eventReason, action, message string) {
	if setCondition(&u.Status.Conditions, u.Generation, now, metav1.ConditionFalse, reason, message) {
		emit(r.Recorder, u, corev1.EventTypeWarning, eventReason, action, "%s", message)
	}
}
