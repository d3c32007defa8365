package controllers

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/controllers/internal/desired"
	"github.com/tokensmith/tokensmith/internal/credstore"
)

// Field indexes on the cached OAuthClients, Users and Secrets.
const (
	// indexClaim holds "clientID=<id>" and "numericID=<n>": what an OAuthClient
	// claims in the whole installation.
	indexClaim = "auth.tokensmith.io/claim"
	// indexSecretName holds the name of the Secret an object reads credentials from.
	indexSecretName = "auth.tokensmith.io/secret-name"
	// indexUsername holds a User's spec.username.
	indexUsername = "auth.tokensmith.io/username"
	// indexClaimHolder on Secrets holds a claim record's holder as
	// "<claim kind>/<uid>" (claimHolder); other Secrets have no value.
	indexClaimHolder = "auth.tokensmith.io/claim-holder"
)

// fieldIndexes is every field index the reconcilers and watches list by: the
// manager's cache registers each (setupIndexes), and so does the fake client
// of the odd-input tests, so neither can miss one the code lists by.
var fieldIndexes = []struct {
	obj     client.Object
	field   string
	extract client.IndexerFunc
}{
	{&authv1alpha1.OAuthClient{}, indexClaim, func(o client.Object) []string {
		return oauthClientClaims(o.(*authv1alpha1.OAuthClient))
	}},
	{&authv1alpha1.OAuthClient{}, indexSecretName, func(o client.Object) []string {
		return []string{desired.ConsumerSecretName(o.(*authv1alpha1.OAuthClient))}
	}},
	{&authv1alpha1.User{}, indexUsername, func(o client.Object) []string {
		return []string{o.(*authv1alpha1.User).Spec.Username}
	}},
	{&authv1alpha1.User{}, indexSecretName, func(o client.Object) []string {
		name, _ := desired.PasswordSecretKey(o.(*authv1alpha1.User))
		return []string{name}
	}},
	{&corev1.Secret{}, indexClaimHolder, claimHolderOf},
}

func setupIndexes(mgr ctrl.Manager) error {
	ctx := context.Background()
	fi := mgr.GetFieldIndexer()
	for _, ix := range fieldIndexes {
		if err := fi.IndexField(ctx, ix.obj, ix.field, ix.extract); err != nil {
			return fmt.Errorf("controllers: indexing %T by %s: %w", ix.obj, ix.field, err)
		}
	}
	return nil
}

func requestFor(o client.Object) reconcile.Request {
	return reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)}
}

// newSecretMetadataWatch starts a second, metadata-only cache of the Secrets
// that tokensmith does not label: user-provided Secrets (existingSecret,
// passwordSecretRef) and pre-existing ones it may adopt. The main cache holds
// only labelled Secrets, so without this watch an OAuthClient waiting for its
// Secret would not notice it appear. Metadata is enough: the reconciler reads
// such Secrets through the API reader anyway, so an event never races a stale
// cached copy.
func newSecretMetadataWatch(mgr ctrl.Manager) (cache.Cache, error) {
	notManaged, err := labels.NewRequirement(authv1alpha1.LabelManagedBy, selection.NotEquals, []string{authv1alpha1.ManagedByValue})
	if err != nil {
		return nil, err
	}
	c, err := cache.New(mgr.GetConfig(), cache.Options{
		HTTPClient:           mgr.GetHTTPClient(),
		Scheme:               mgr.GetScheme(),
		Mapper:               mgr.GetRESTMapper(),
		DefaultLabelSelector: labels.NewSelector().Add(*notManaged),
		DefaultTransform:     cache.TransformStripManagedFields(),
	})
	if err != nil {
		return nil, fmt.Errorf("controllers: creating the Secret metadata cache: %w", err)
	}
	if err := mgr.Add(c); err != nil {
		return nil, err
	}
	return c, nil
}

func secretMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return m
}

// secretMapper maps a Secret event to the objects that read or own that Secret.
type secretMapper struct {
	reader          client.Reader
	serverNamespace string
	// kind is whose claim records and verifiers this mapper follows.
	kind claimKind
}

func (m secretMapper) Map(ctx context.Context, s client.Object) []reconcile.Request {
	if kind := s.GetLabels()[labelClaimKind]; kind != "" && s.GetNamespace() == m.serverNamespace {
		// A claim record taken or given up: every claimant may now hold it.
		if kind != m.kind.name {
			return nil
		}
		field, value := m.kind.index(s.GetAnnotations()[annotationClaim])
		return m.listRequests(ctx, client.MatchingFields{field: value})
	}
	if s.GetNamespace() == m.serverNamespace && s.GetLabels()[credstore.LabelSecretType] != "" {
		if s.GetLabels()[credstore.LabelSecretType] != m.kind.verifierType {
			return nil
		}
		ns, name, ok := strings.Cut(s.GetAnnotations()[credstore.AnnotationOwner], "/")
		if !ok {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}}
	}
	return m.listRequests(ctx, client.InNamespace(s.GetNamespace()), client.MatchingFields{indexSecretName: s.GetName()})
}

// listRequests lists the mapper's kind and returns a request for each item.
func (m secretMapper) listRequests(ctx context.Context, opts ...client.ListOption) []reconcile.Request {
	list := m.kind.newList()
	if err := m.reader.List(ctx, list, opts...); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing the objects a Secret concerns")
		return nil
	}
	var reqs []reconcile.Request
	_ = forEachItem(list, func(o client.Object) { reqs = append(reqs, requestFor(o)) })
	return reqs
}

func forEachItem(list client.ObjectList, f func(client.Object)) error {
	switch l := list.(type) {
	case *authv1alpha1.OAuthClientList:
		for i := range l.Items {
			f(&l.Items[i])
		}
	case *authv1alpha1.UserList:
		for i := range l.Items {
			f(&l.Items[i])
		}
	default:
		return fmt.Errorf("unexpected list %T", list)
	}
	return nil
}

// watchKind registers the controller of one kind: its objects, the other
// claimants of their identifiers (a change to one, its deletion, may free an
// identifier for another), and the Secrets they read, own or are served by.
// metaCache is the metadata-only watch of unlabelled Secrets (see
// newSecretMetadataWatch).
func watchKind(mgr ctrl.Manager, metaCache cache.Cache, name, serverNamespace string, kind claimKind, r reconcile.Reconciler) error {
	m := secretMapper{reader: mgr.GetCache(), serverNamespace: serverNamespace, kind: kind}
	b := policyWatches(ctrl.NewControllerManagedBy(mgr), mgr.GetCache(), kind.newList)
	return b.
		Named(name).
		For(kind.newObject()).
		Watches(kind.newObject(), handler.EnqueueRequestsFromMapFunc(kind.otherClaimants(mgr.GetCache()))).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(m.Map)).
		WatchesRawSource(metadataSource(metaCache, m)).
		Complete(r)
}

// metadataSource feeds the metadata watch of unlabelled Secrets through m.
func metadataSource(metaCache cache.Cache, m secretMapper) source.Source {
	return source.Kind(metaCache, secretMetadata(),
		handler.TypedEnqueueRequestsFromMapFunc(func(ctx context.Context, o *metav1.PartialObjectMetadata) []reconcile.Request {
			return m.Map(ctx, o)
		}))
}
