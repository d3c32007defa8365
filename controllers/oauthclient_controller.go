package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/controllers/internal/desired"
	"github.com/tokensmith/tokensmith/internal/credstore"
)

// oauthClientReconciler keeps, for each OAuthClient, the consumer Secret in its
// namespace and the client verifier in the server namespace.
type oauthClientReconciler struct {
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
func (r *oauthClientReconciler) SetupWithManager(mgr ctrl.Manager, metaCache cache.Cache) error {
	m := secretMapper{
		reader:          mgr.GetCache(),
		serverNamespace: r.Options.ServerNamespace,
		verifierType:    credstore.TypeClientVerifier,
		list:            func() client.ObjectList { return &authv1alpha1.OAuthClientList{} },
		claims:          clientClaimKind,
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("oauthclient").
		For(&authv1alpha1.OAuthClient{}).
		// A change to one claimant of a clientID or numericID may free it for
		// another (its deletion): wake every claimant.
		Watches(&authv1alpha1.OAuthClient{}, handler.EnqueueRequestsFromMapFunc(clientClaimKind.otherClaimants(mgr.GetCache()))).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(m.Map)).
		WatchesRawSource(metadataSource(metaCache, m)).
		Complete(r)
}

func (r *oauthClientReconciler) secrets() secretReader {
	return secretReader{cached: r.Client, api: r.APIReader}
}

func (r *oauthClientReconciler) claims() claimer {
	return claimer{client: r.Client, apiReader: r.APIReader, serverNamespace: r.Options.ServerNamespace, kind: clientClaimKind}
}

func (r *oauthClientReconciler) lifecycle() lifecycle[*authv1alpha1.OAuthClient] {
	return lifecycle[*authv1alpha1.OAuthClient]{
		client: r.Client, secrets: r.secrets(), claims: r.claims(),
		verifierKey: r.verifierKey,
		status:      func(oc *authv1alpha1.OAuthClient) any { return oc.Status },
		setNotReady: r.setNotReady,
	}
}

func (r *oauthClientReconciler) verifierKey(oc *authv1alpha1.OAuthClient) types.NamespacedName {
	return types.NamespacedName{Namespace: r.Options.ServerNamespace, Name: credstore.ClientVerifierName(oc.Namespace, oc.Name)}
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
	requeue, err := r.ensureVerifier(ctx, oc, secretKey.Name, current, clientID, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	// Give up an identifier this client no longer asks for (a client id
	// generated by a reconcile that never got to record it in status).
	if err := r.claims().release(ctx, oc, claimKeys(claims)); err != nil {
		return ctrl.Result{}, err
	}
	setClientServed(oc, now, secretKey.Name)
	return ctrl.Result{RequeueAfter: requeue}, nil
}
