package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/controllers/internal/desired"
	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/internal/tenancy"
)

// TokenPolicies, enforced by the controller on every OAuthClient and User,
// admitted or not: the chart's ValidatingAdmissionPolicy refuses a forbidden
// object when it is applied, and this is what holds for objects that existed
// before a policy did, or were admitted while the snapshot admission reads was
// stale. internal/tenancy decides; the rules and messages are admission's.
//
// An object no policy allows gets Ready=False, reason PolicyDenied, and a
// Warning event; its verifier, if it has one, is kept but marked policyDenied,
// which the token server treats as absent. Nothing else changes (the consumer
// Secret, the digests, the password hash), so a policy that allows the object
// again restores it as it was. It keeps its claims, except a username or
// numericID the namespace may not hold at all: those go, so that what a tenant
// squatted before the policies existed goes to the namespace allowed it.
//
// +kubebuilder:rbac:groups=auth.tokensmith.io,resources=tokenpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=auth.tokensmith.io,resources=tokenpolicysnapshots,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// EventPolicyDenied (Warning): no TokenPolicy allows the object; the token
// server issues nothing for it until one does.
const EventPolicyDenied = "PolicyDenied"

// policies reads every TokenPolicy and the labels of namespace from the cache.
func loadPolicies(ctx context.Context, c client.Reader, o Options, namespace string) (tenancy.Policies, tenancy.Namespace, error) {
	var list authv1alpha1.TokenPolicyList
	if err := c.List(ctx, &list); err != nil {
		return tenancy.Policies{}, tenancy.Namespace{}, fmt.Errorf("listing TokenPolicies: %w", err)
	}
	p := tenancy.FromTokenPolicies(list.Items, o.DenyUnlessAllowed)
	ns := tenancy.Namespace{Name: namespace}
	if !p.Enforced() {
		return p, ns, nil
	}
	var obj corev1.Namespace
	if err := c.Get(ctx, types.NamespacedName{Name: namespace}, &obj); err != nil && !apierrors.IsNotFound(err) {
		return tenancy.Policies{}, tenancy.Namespace{}, fmt.Errorf("reading namespace %s: %w", namespace, err)
	}
	ns.Labels = obj.Labels
	return p, ns, nil
}

// policyDeniedMessage completes a denial with what it means for the object.
func policyDeniedMessage(denied error, issued bool) string {
	if issued {
		return denied.Error() + "; the token server issues no token for it and accepts none of its tokens, and its credentials are kept for when a TokenPolicy allows it"
	}
	return denied.Error() + "; nothing is issued for it until a TokenPolicy allows it"
}

// denyClient enforces the policies on oc. It reports whether oc is denied, in
// which case the reconcile stops there.
func (r *oauthClientReconciler) denyClient(ctx context.Context, oc *authv1alpha1.OAuthClient) (bool, error) {
	p, ns, err := loadPolicies(ctx, r.Client, r.Options, oc.Namespace)
	if err != nil {
		return false, err
	}
	denied := p.CheckClient(ns, &oc.Spec)
	if denied == nil {
		return false, nil
	}
	issued, err := markVerifierDenied(ctx, r.Client, r.secrets(), r.verifierKey(oc), credstore.TypeClientVerifier, oc, &credstore.ClientVerifier{},
		func(v *credstore.ClientVerifier) { v.PolicyDenied = true })
	if err != nil {
		return false, err
	}
	keep := claimKeys(clientClaims(oc, desired.ClaimedClientID(oc)))
	if oc.Spec.NumericID != nil && !p.NumericIDAllowedIn(ns, *oc.Spec.NumericID) {
		delete(keep, claimNumericID(*oc.Spec.NumericID))
	}
	if err := r.claims().release(ctx, oc, keep); err != nil {
		return false, err
	}
	r.setNotReady(oc, r.Options.now(), authv1alpha1.ReasonPolicyDenied, EventPolicyDenied, actionRefuse, policyDeniedMessage(denied, issued))
	return true, nil
}

// denyUser is denyClient for a User.
func (r *userReconciler) denyUser(ctx context.Context, u *authv1alpha1.User) (bool, error) {
	p, ns, err := loadPolicies(ctx, r.Client, r.Options, u.Namespace)
	if err != nil {
		return false, err
	}
	denied := p.CheckUser(ns, &u.Spec)
	if denied == nil {
		return false, nil
	}
	issued, err := markVerifierDenied(ctx, r.Client, r.secrets(), r.verifierKey(u), credstore.TypeUserVerifier, u, &credstore.UserVerifier{},
		func(v *credstore.UserVerifier) { v.PolicyDenied = true })
	if err != nil {
		return false, err
	}
	if !p.UsernameAllowedIn(ns, u.Spec.Username) {
		if err := r.claims().release(ctx, u, nil); err != nil {
			return false, err
		}
	}
	r.setNotReady(u, r.Options.now(), authv1alpha1.ReasonPolicyDenied, EventPolicyDenied, actionRefuse, policyDeniedMessage(denied, issued))
	return true, nil
}

// markVerifierDenied rewrites the verifier at key, if there is one, with
// mark applied and nothing else changed. It reports whether there was one.
func markVerifierDenied[V any](ctx context.Context, c client.Client, secrets secretReader, key types.NamespacedName, typ string, owner client.Object, doc *V, mark func(*V)) (bool, error) {
	existing, err := secrets.get(ctx, key)
	if err != nil || existing == nil {
		return false, err
	}
	if err := credstore.Decode(existing.Data[credstore.DataKey], doc); err != nil {
		// Not a verifier the server could use either; the normal path rewrites it once allowed.
		return false, nil //nolint:nilerr // a malformed verifier is served by no one
	}
	mark(doc)
	data, err := credstore.Encode(doc)
	if err != nil {
		return false, err
	}
	// The wall clock stamps the change for the token server's propagation
	// metric; nothing waits on a denial, so no injected clock is needed.
	_, err = applyVerifier(ctx, c, secrets, existing, verifierSecret(key.Namespace, key.Name, typ, ownerString(owner), data), time.Now())
	return true, err
}

// policyWatches wakes every object of a kind when a TokenPolicy changes, and
// the objects of a namespace when its labels change (what policies select on).
func policyWatches(b *builder.Builder, reader client.Reader, newList func() client.ObjectList) *builder.Builder {
	enqueue := func(ctx context.Context, opts ...client.ListOption) []reconcile.Request {
		list := newList()
		if err := reader.List(ctx, list, opts...); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing objects a TokenPolicy may affect")
			return nil
		}
		var reqs []reconcile.Request
		_ = forEachItem(list, func(o client.Object) { reqs = append(reqs, requestFor(o)) })
		return reqs
	}
	return b.
		Watches(&authv1alpha1.TokenPolicy{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
			return enqueue(ctx)
		})).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, ns client.Object) []reconcile.Request {
			return enqueue(ctx, client.InNamespace(ns.GetName()))
		}), builder.WithPredicates(predicate.LabelChangedPredicate{}))
}

// PolicySnapshotReconciler keeps the TokenPolicySnapshot, the copy of every
// TokenPolicy the chart's ValidatingAdmissionPolicy reads (see
// charts/tokensmith/templates/admission-policy.yaml for why a copy).
type PolicySnapshotReconciler struct {
	Client  client.Client
	Options Options
}

func (r *PolicySnapshotReconciler) name() string {
	if r.Options.PolicySnapshotName != "" {
		return r.Options.PolicySnapshotName
	}
	return tenancy.DefaultSnapshotName
}

// SetupWithManager registers the controller: every TokenPolicy event, any
// change to the snapshot by someone else, and the start (so that the snapshot
// exists with no policy) all lead to the one request.
func (r *PolicySnapshotReconciler) SetupWithManager(mgr ctrl.Manager) error {
	req := reconcile.Request{NamespacedName: types.NamespacedName{Name: r.name()}}
	one := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request { return []reconcile.Request{req} })
	return ctrl.NewControllerManagedBy(mgr).
		Named("tokenpolicysnapshot").
		Watches(&authv1alpha1.TokenPolicy{}, one).
		Watches(&authv1alpha1.TokenPolicySnapshot{}, one).
		WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			q.Add(req)
			return nil
		})).
		// One request only; one worker, so two writes never race.
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Complete(r)
}

// Reconcile writes the snapshot when it differs from the TokenPolicies.
func (r *PolicySnapshotReconciler) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	var list authv1alpha1.TokenPolicyList
	if err := r.Client.List(ctx, &list); err != nil {
		return ctrl.Result{}, err
	}
	desired := tenancy.FromTokenPolicies(list.Items, r.Options.DenyUnlessAllowed).Snapshot(r.name())
	current := &authv1alpha1.TokenPolicySnapshot{}
	err := r.Client.Get(ctx, types.NamespacedName{Name: r.name()}, current)
	switch {
	case apierrors.IsNotFound(err):
		if err := r.Client.Create(ctx, desired); err != nil && !apierrors.IsAlreadyExists(err) {
			return ctrl.Result{}, fmt.Errorf("creating the TokenPolicySnapshot: %w", err)
		}
		return ctrl.Result{}, nil
	case err != nil:
		return ctrl.Result{}, err
	}
	if equality.Semantic.DeepEqual(current.Spec, desired.Spec) {
		return ctrl.Result{}, nil
	}
	updated := current.DeepCopy()
	updated.Spec = desired.Spec
	if err := r.Client.Update(ctx, updated); err != nil {
		return requeueOnConflict(ctrl.Result{}, fmt.Errorf("updating the TokenPolicySnapshot: %w", err))
	}
	return ctrl.Result{}, nil
}
