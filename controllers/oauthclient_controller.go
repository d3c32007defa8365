package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
)

// OAuthClientReconciler keeps, for each OAuthClient, the consumer Secret in its
// namespace and the client verifier in the server namespace.
type OAuthClientReconciler struct {
	// Client reads through the manager's cache, which holds only labelled Secrets.
	Client client.Client
	// APIReader reads from the API server: before generating anything, and for
	// Secrets tokensmith has not labelled.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	Options   Options
}

// SetupWithManager registers the controller. metaCache is the metadata-only
// watch of unlabelled Secrets (see newSecretMetadataWatch).
func (r *OAuthClientReconciler) SetupWithManager(mgr ctrl.Manager, metaCache cache.Cache) error {
	m := secretMapper{
		reader:          mgr.GetCache(),
		serverNamespace: r.Options.ServerNamespace,
		verifierType:    credstore.TypeClientVerifier,
		list:            func() client.ObjectList { return &authv1alpha1.OAuthClientList{} },
		claimKind:       claimKindClient,
		claimIndex:      func(claim string) (string, string) { return indexClaim, claim },
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("oauthclient").
		For(&authv1alpha1.OAuthClient{}).
		// A change to one claimant of a clientID or numericID may free it for
		// another (its deletion): wake every claimant.
		Watches(&authv1alpha1.OAuthClient{}, handler.EnqueueRequestsFromMapFunc(r.otherClaimants(mgr.GetCache()))).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(m.Map)).
		WatchesRawSource(metadataSource(metaCache, m)).
		Complete(r)
}

// otherClaimants maps an OAuthClient to every OAuthClient sharing one of its claims.
func (r *OAuthClientReconciler) otherClaimants(reader client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		oc, ok := o.(*authv1alpha1.OAuthClient)
		if !ok {
			return nil
		}
		var reqs []reconcile.Request
		for _, claim := range oauthClientClaims(oc) {
			var list authv1alpha1.OAuthClientList
			if err := reader.List(ctx, &list, client.MatchingFields{indexClaim: claim}); err != nil {
				ctrl.LoggerFrom(ctx).Error(err, "listing OAuthClients by claim")
				continue
			}
			for i := range list.Items {
				if list.Items[i].UID != oc.UID {
					reqs = append(reqs, requestFor(&list.Items[i]))
				}
			}
		}
		return reqs
	}
}

func (r *OAuthClientReconciler) secrets() secretReader {
	return secretReader{cached: r.Client, api: r.APIReader}
}

func (r *OAuthClientReconciler) claims() claimer {
	return claimer{
		client: r.Client, apiReader: r.APIReader,
		serverNamespace: r.Options.ServerNamespace, kind: claimKindClient,
		newObject:      func() client.Object { return &authv1alpha1.OAuthClient{} },
		heldByVerifier: r.heldByVerifier,
	}
}

func (r *OAuthClientReconciler) verifierKey(oc *authv1alpha1.OAuthClient) types.NamespacedName {
	return types.NamespacedName{Namespace: r.Options.ServerNamespace, Name: credstore.ClientVerifierName(oc.Namespace, oc.Name)}
}

// Reconcile implements reconcile.Reconciler.
func (r *OAuthClientReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return requeueOnConflict(r.reconcile(ctx, req))
}

// reconcile follows the same opening as every reconciler here: get, finalize
// on deletion, add the finalizer, do the work, write status once on the way out.
func (r *OAuthClientReconciler) reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	oc := &authv1alpha1.OAuthClient{}
	if err := r.Client.Get(ctx, req.NamespacedName, oc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !oc.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, oc)
	}
	if err := addFinalizer(ctx, r.Client, oc); err != nil {
		return ctrl.Result{}, err
	}

	original := oc.DeepCopy()
	defer func() {
		if err := patchStatus(ctx, r.Client, original, oc, equality.Semantic.DeepEqual(original.Status, oc.Status)); err != nil {
			retErr = errors.Join(retErr, err)
		}
	}()
	oc.Status.ObservedGeneration = oc.Generation
	return r.reconcileClient(ctx, oc)
}

// reconcileClient does the work in phases: read the consumer Secret, claim the
// identifiers known so far, refuse a Secret that is not tokensmith's to write,
// settle the client id and claim it, make the consumer Secret complete, and
// write the verifier that follows it.
func (r *OAuthClientReconciler) reconcileClient(ctx context.Context, oc *authv1alpha1.OAuthClient) (ctrl.Result, error) {
	now := r.Options.now()
	secretKey := types.NamespacedName{Namespace: oc.Namespace, Name: desired.ConsumerSecretName(oc)}
	named := oc.Status.SecretName == secretKey.Name
	oc.Status.SecretName = secretKey.Name

	consumer, err := r.secrets().get(ctx, secretKey)
	if err != nil {
		return ctrl.Result{}, err
	}
	// Claim what is known already (spec.clientID, the id in status, the
	// numericID) before anything else: the first claimant keeps an
	// identifier, even one still waiting for its Secret.
	if taken, err := r.claims().acquire(ctx, oc, clientClaims(oc, desired.ClaimedClientID(oc))); err != nil || taken != "" {
		return ctrl.Result{}, r.refuseConflict(ctx, oc, now, taken, err)
	}
	if oc.Spec.ExistingSecret {
		if missing := desired.MissingProvidedKeys(oc, consumerData(consumer), consumer != nil); missing != "" {
			// Never generate into a Secret someone else provides, and leave the
			// verifier as it is: see keptWhileWaiting.
			r.setNotReady(oc, now, authv1alpha1.ReasonWaitingForSecret, EventWaitingForSecret, actionWait,
				fmt.Sprintf("Waiting for Secret %s to hold %s", secretKey.Name, missing)+
					keptWhileWaiting(ctx, r.Client, r.verifierKey(oc)))
			return ctrl.Result{}, nil
		}
	} else if consumer != nil {
		if problem := r.unadoptable(oc, consumer); problem != "" {
			// Someone else's Secret: never write to it, never own it.
			r.setNotReady(oc, now, authv1alpha1.ReasonForeignSecret, EventForeignSecret, actionRefuse, problem)
			return ctrl.Result{}, nil
		}
	}

	clientID, problem := desired.ResolveClientID(oc, secretKey.Name, consumerData(consumer))
	if problem != "" {
		r.setNotReady(oc, now, authv1alpha1.ReasonInvalid, EventInvalid, actionRefuse, problem)
		return ctrl.Result{}, nil
	}
	if oc.Spec.ClientID != "" {
		oc.Status.ClientID = oc.Spec.ClientID
	}

	claims := clientClaims(oc, clientID)
	if taken, err := r.claims().acquire(ctx, oc, claims); err != nil || taken != "" {
		return ctrl.Result{}, r.refuseConflict(ctx, oc, now, taken, err)
	}

	if !oc.Spec.ExistingSecret {
		// Credentials were issued through a Secret the API server says is gone
		// if the status named it and the verifier written from it is still
		// there: someone deleted it. (The status alone does not tell: a client
		// refused for a conflict had its client id and Secret name in status,
		// and never a Secret or a verifier.)
		issued := consumer == nil && named && secretCached(ctx, r.Client, r.verifierKey(oc))
		if consumer, err = r.ensureConsumerSecret(ctx, oc, secretKey, consumer, clientID, issued); err != nil {
			return ctrl.Result{}, err
		}
	}
	oc.Status.ClientID = clientID

	current, problem := desired.CurrentDigests(oc, consumer.Name, consumer.Data)
	if problem != "" {
		r.setNotReady(oc, now, authv1alpha1.ReasonInvalid, EventInvalid, actionRefuse, problem)
		return ctrl.Result{}, nil
	}
	requeue, err := r.ensureVerifier(ctx, oc, secretKey.Name, current, clientID, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	// Give up an identifier this client no longer asks for (a client id
	// generated by a reconcile that never got to record it in status).
	if err := r.claims().release(ctx, oc, claimKeys(claims)); err != nil {
		return ctrl.Result{}, err
	}
	setReady(&oc.Status.Conditions, oc.Generation, now, authv1alpha1.ReasonIssued,
		fmt.Sprintf("Credentials are in Secret %s", secretKey.Name))
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// refuseConflict handles an identifier someone else holds (taken), or the
// error acquire returned. The holder keeps working; this client must not be
// able to mint tokens under an identity that is not its own, so its verifier
// goes. The message names the identifier, never the holder: who holds which
// username or client id is not for every namespace to learn.
func (r *OAuthClientReconciler) refuseConflict(ctx context.Context, oc *authv1alpha1.OAuthClient, now time.Time, taken string, err error) error {
	if err != nil {
		return err
	}
	if err := deleteSecret(ctx, r.Client, r.secrets(), r.verifierKey(oc)); err != nil {
		return err
	}
	r.setNotReady(oc, now, authv1alpha1.ReasonConflict, EventConflict, actionRefuse, conflictMessage(taken))
	return nil
}

// finalize deletes the verifier, gives up the client's claims, then lets the
// OAuthClient go. A consumer Secret tokensmith created is owned by the
// OAuthClient, so garbage collection removes it; an adopted one stays.
func (r *OAuthClientReconciler) finalize(ctx context.Context, oc *authv1alpha1.OAuthClient) error {
	if !controllerutil.ContainsFinalizer(oc, FinalizerVerifier) {
		return nil
	}
	if err := deleteSecret(ctx, r.Client, r.secrets(), r.verifierKey(oc)); err != nil {
		return err
	}
	if err := r.claims().releaseAll(ctx, oc); err != nil {
		return err
	}
	return removeFinalizer(ctx, r.Client, oc)
}

// addFinalizer patches the finalizer in only when it is missing.
func addFinalizer(ctx context.Context, c client.Client, obj client.Object) error {
	if controllerutil.ContainsFinalizer(obj, FinalizerVerifier) {
		return nil
	}
	before := obj.DeepCopyObject().(client.Object)
	controllerutil.AddFinalizer(obj, FinalizerVerifier)
	if err := c.Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("adding finalizer: %w", err)
	}
	return nil
}

func removeFinalizer(ctx context.Context, c client.Client, obj client.Object) error {
	before := obj.DeepCopyObject().(client.Object)
	controllerutil.RemoveFinalizer(obj, FinalizerVerifier)
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
