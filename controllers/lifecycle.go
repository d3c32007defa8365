package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// credentialReconciler is what the OAuthClient and User reconcilers hold.
type credentialReconciler struct {
	// Client reads through the manager's cache, which holds only labelled Secrets.
	Client client.Client
	// APIReader reads from the API server: before generating anything, and for
	// Secrets tokensmith has not labelled.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	Options   Options
}

func (r credentialReconciler) secrets() secretReader {
	return secretReader{cached: r.Client, api: r.APIReader}
}

func (r credentialReconciler) claimerOf(kind claimKind) claimer {
	return claimer{client: r.Client, apiReader: r.APIReader, serverNamespace: r.Options.ServerNamespace, kind: kind}
}

// verifierKeyOf is where obj's verifier lives, in the server namespace.
func (r credentialReconciler) verifierKeyOf(kind claimKind, obj client.Object) types.NamespacedName {
	return types.NamespacedName{Namespace: r.Options.ServerNamespace, Name: kind.verifierName(obj.GetNamespace(), obj.GetName())}
}

// lifecycleOf is the lifecycle of one kind; setNotReady is the kind's own
// (*_status.go).
func lifecycleOf[T client.Object](r credentialReconciler, kind claimKind, status func(T) any,
	setNotReady func(obj T, now time.Time, reason, eventReason, action, message string)) lifecycle[T] {
	return lifecycle[T]{
		client: r.Client, secrets: r.secrets(), claims: r.claimerOf(kind),
		verifierKey: func(obj T) types.NamespacedName { return r.verifierKeyOf(kind, obj) },
		status:      status, setNotReady: setNotReady,
	}
}

// lifecycle is what the OAuthClient and User reconcilers share around their
// work: get the object, finalize it on deletion (delete its verifier, give up
// its claims, remove the finalizer), add the finalizer, and write its status
// once, on the way out, only when the work changed it. Each kind supplies its
// verifier's key, its status and its Ready=False writer; the work itself is
// the kind's own (reconcileClient, reconcileUser).
type lifecycle[T client.Object] struct {
	client  client.Client
	secrets secretReader
	claims  claimer
	// verifierKey is where obj's verifier lives, in the server namespace.
	verifierKey func(obj T) types.NamespacedName
	// status is obj's status, compared before and after the work.
	status func(obj T) any
	// setNotReady records why obj cannot be served (see *_status.go).
	setNotReady func(obj T, now time.Time, reason, eventReason, action, message string)
}

// reconcile runs work on a fresh copy of the object at key, which obj is an
// empty instance of. A Conflict from an optimistic write is a quiet retry
// (requeueOnConflict).
func (l lifecycle[T]) reconcile(ctx context.Context, key types.NamespacedName, obj T, work func(context.Context, T) (ctrl.Result, error)) (ctrl.Result, error) {
	return requeueOnConflict(l.run(ctx, key, obj, work))
}

func (l lifecycle[T]) run(ctx context.Context, key types.NamespacedName, obj T, work func(context.Context, T) (ctrl.Result, error)) (res ctrl.Result, retErr error) {
	if err := l.client.Get(ctx, key, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.GetDeletionTimestamp().IsZero() {
		return ctrl.Result{}, l.finalize(ctx, obj)
	}
	if err := addFinalizer(ctx, l.client, obj); err != nil {
		return ctrl.Result{}, err
	}

	original := obj.DeepCopyObject().(T)
	defer func() {
		if err := patchStatus(ctx, l.client, original, obj, equality.Semantic.DeepEqual(l.status(original), l.status(obj))); err != nil {
			retErr = errors.Join(retErr, err)
		}
	}()
	return work(ctx, obj)
}

// finalize deletes the verifier, gives up the object's claims, then lets the
// object go. A Secret tokensmith created in the object's namespace is owned
// by it, so garbage collection removes it; an adopted one stays.
func (l lifecycle[T]) finalize(ctx context.Context, obj T) error {
	if !controllerutil.ContainsFinalizer(obj, finalizerVerifier) {
		return nil
	}
	if err := deleteSecret(ctx, l.client, l.secrets, l.verifierKey(obj)); err != nil {
		return err
	}
	if err := l.claims.releaseAll(ctx, obj); err != nil {
		return err
	}
	return removeFinalizer(ctx, l.client, obj)
}

// addFinalizer patches the finalizer in only when it is missing.
func addFinalizer(ctx context.Context, c client.Client, obj client.Object) error {
	if controllerutil.ContainsFinalizer(obj, finalizerVerifier) {
		return nil
	}
	before := obj.DeepCopyObject().(client.Object)
	controllerutil.AddFinalizer(obj, finalizerVerifier)
	if err := c.Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("adding finalizer: %w", err)
	}
	return nil
}

func removeFinalizer(ctx context.Context, c client.Client, obj client.Object) error {
	before := obj.DeepCopyObject().(client.Object)
	controllerutil.RemoveFinalizer(obj, finalizerVerifier)
	if err := c.Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return client.IgnoreNotFound(err)
	}
	return nil
}

// patchStatus writes obj's status once, as a merge patch of what this
// reconcile changed: fields others write (a User's devices and lockedUntil,
// patched by the token server) are left alone.
func patchStatus(ctx context.Context, c client.Client, original, obj client.Object, unchanged bool) error {
	if unchanged {
		return nil
	}
	if err := c.Status().Patch(ctx, obj, client.MergeFrom(original)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("writing status: %w", err)
	}
	return nil
}

// requeueOnConflict turns an optimistic-concurrency Conflict into a quiet
// retry: it means the cache was behind, and the event that brings it up to
// date is already on its way. Anything else is returned as an error.
func requeueOnConflict(res ctrl.Result, err error) (ctrl.Result, error) {
	if err != nil && apierrors.IsConflict(err) {
		return ctrl.Result{RequeueAfter: conflictRetry}, nil
	}
	return res, err
}

// conflictRetry is how soon a reconcile that lost a write race runs again.
const conflictRetry = 250 * time.Millisecond
