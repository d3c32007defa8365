package controllers

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/controllers/internal/desired"
)

// oauthClientReconciler keeps, for each OAuthClient, the consumer Secret in its
// namespace and the client verifier in the server namespace.
type oauthClientReconciler struct {
	credentialReconciler
}

// SetupWithManager registers the controller; see watchKind.
func (r *oauthClientReconciler) SetupWithManager(mgr ctrl.Manager, metaCache cache.Cache) error {
	return watchKind(mgr, metaCache, "oauthclient", r.Options.ServerNamespace, clientClaimKind, r)
}

func (r *oauthClientReconciler) claims() claimer { return r.claimerOf(clientClaimKind) }

func (r *oauthClientReconciler) verifierKey(oc *authv1alpha1.OAuthClient) types.NamespacedName {
	return r.verifierKeyOf(clientClaimKind, oc)
}

func (r *oauthClientReconciler) lifecycle() lifecycle[*authv1alpha1.OAuthClient] {
	return lifecycleOf(r.credentialReconciler, clientClaimKind,
		func(oc *authv1alpha1.OAuthClient) any { return oc.Status }, r.setNotReady)
}

// Reconcile implements reconcile.Reconciler: the shared lifecycle around reconcileClient.
func (r *oauthClientReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return r.lifecycle().reconcile(ctx, req.NamespacedName, &authv1alpha1.OAuthClient{}, r.reconcileClient)
}

// reconcileClient does the work in phases: read the consumer Secret, claim the
// identifiers known so far, refuse a Secret that is not tokensmith's to write,
// settle the client id and claim it, make the consumer Secret complete, and
// write the verifier that follows it.
func (r *oauthClientReconciler) reconcileClient(ctx context.Context, oc *authv1alpha1.OAuthClient) (ctrl.Result, error) {
	now := r.Options.now()
	oc.Status.ObservedGeneration = oc.Generation
	// Policies first: a client no TokenPolicy allows claims and issues nothing.
	if denied, err := r.denyClient(ctx, oc); err != nil || denied {
		return ctrl.Result{}, err
	}
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
		return ctrl.Result{}, r.lifecycle().refuseConflict(ctx, oc, now, taken, err)
	}
	if oc.Spec.ExistingSecret {
		if missing := desired.MissingProvidedKeys(oc, consumerData(consumer), consumer != nil); missing != "" {
			// Never generate into a Secret someone else provides, and leave the
			// verifier as it is: see keptWhileWaiting.
			r.setNotReady(oc, now, authv1alpha1.ReasonWaitingForSecret, eventWaitingForSecret, actionWait,
				fmt.Sprintf("Waiting for Secret %s to hold %s", secretKey.Name, missing)+
					keptWhileWaiting(ctx, r.Client, r.verifierKey(oc)))
			return ctrl.Result{}, nil
		}
	} else if consumer != nil {
		if problem := r.unadoptable(oc, consumer); problem != "" {
			// Someone else's Secret: never write to it, never own it.
			r.setNotReady(oc, now, authv1alpha1.ReasonForeignSecret, eventForeignSecret, actionRefuse, problem)
			return ctrl.Result{}, nil
		}
	}

	clientID, problem := desired.ResolveClientID(oc, secretKey.Name, consumerData(consumer))
	if problem != "" {
		r.setNotReady(oc, now, authv1alpha1.ReasonInvalid, eventInvalid, actionRefuse, problem)
		return ctrl.Result{}, nil
	}
	if oc.Spec.ClientID != "" {
		oc.Status.ClientID = oc.Spec.ClientID
	}

	claims := clientClaims(oc, clientID)
	if taken, err := r.claims().acquire(ctx, oc, claims); err != nil || taken != "" {
		return ctrl.Result{}, r.lifecycle().refuseConflict(ctx, oc, now, taken, err)
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
		r.setNotReady(oc, now, authv1alpha1.ReasonInvalid, eventInvalid, actionRefuse, problem)
		return ctrl.Result{}, nil
	}
	requeue, writtenAt, err := r.ensureVerifier(ctx, oc, secretKey.Name, current, clientID, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	// Give up an identifier this client no longer asks for (a client id
	// generated by a reconcile that never got to record it in status).
	if err := r.claims().release(ctx, oc, claimKeys(claims)); err != nil {
		return ctrl.Result{}, err
	}
	if wait := r.Options.propagating(writtenAt, now); wait > 0 {
		setPropagating(&oc.Status.Conditions, oc.Generation, now, r.Options.PropagationAllowance)
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	setClientServed(oc, now, secretKey.Name)
	return ctrl.Result{RequeueAfter: requeue}, nil
}
