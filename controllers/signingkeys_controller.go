package controllers

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/internal/keyset"
)

// signingKeysReconciler keeps the signing-keys Secret in the server
// namespace current (creating keys, rotating them every KeyRotationPeriod,
// dropping retired ones after KeyRetention), and makes sure the revocations
// Secret exists so the token server only ever has to update it.
type signingKeysReconciler struct {
	Client    client.Client
	APIReader client.Reader
	Options   Options
}

func (r *signingKeysReconciler) request() reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: r.Options.ServerNamespace, Name: credstore.SigningKeysSecretName}}
}

// SetupWithManager registers the controller. There is one thing to
// reconcile, so every event maps to the same request, and a start-up event
// creates the Secrets when nothing exists yet to produce an event.
func (r *signingKeysReconciler) SetupWithManager(mgr ctrl.Manager) error {
	req := r.request()
	return ctrl.NewControllerManagedBy(mgr).
		Named("signingkeys").
		// One request only, and rotation reads then writes the key set: one worker,
		// whatever ManagerOptions.ConcurrentReconciles says.
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			q.Add(req)
			return nil
		})).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			if o.GetNamespace() != r.Options.ServerNamespace {
				return nil
			}
			if n := o.GetName(); n != credstore.SigningKeysSecretName && n != credstore.RevocationsSecretName {
				return nil
			}
			return []reconcile.Request{req}
		})).
		Complete(r)
}

// Reconcile implements reconcile.Reconciler.
func (r *signingKeysReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return requeueOnConflict(r.reconcile(ctx, req))
}

// reconcile brings the key set up to date and returns at the next rotation or expiry.
func (r *signingKeysReconciler) reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	now := r.Options.now()
	reader := secretReader{cached: r.Client, api: r.APIReader}
	if err := r.ensureRevocations(ctx, reader); err != nil {
		return ctrl.Result{}, err
	}

	key := r.request().NamespacedName
	existing, err := reader.get(ctx, key)
	if err != nil {
		return ctrl.Result{}, err
	}
	var set keyset.Set
	if existing != nil && len(existing.Data[credstore.DataKey]) > 0 {
		// A document we cannot read is not replaced: that would invalidate
		// every token in flight. A person has to look at it.
		if err := credstore.Decode(existing.Data[credstore.DataKey], &set); err != nil {
			return ctrl.Result{}, reconcile.TerminalError(fmt.Errorf("signing-keys Secret %s is not a key set: %w", key, err))
		}
	}
	if _, err := set.Reconcile(now, r.Options.KeyRotationPeriod, r.Options.KeyRetention); err != nil {
		return ctrl.Result{}, err
	}
	doc, err := credstore.Encode(set)
	if err != nil {
		return ctrl.Result{}, err
	}
	desired := r.secret(key.Name, credstore.TypeSigningKeys, doc)
	if err := applySecret(ctx, r.Client, reader, existing, desired); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: nextKeyEvent(set, now, r.Options.KeyRotationPeriod, r.Options.KeyRetention)}, nil
}

// ensureRevocations creates the empty revocations Secret when the API server
// has none; an existing one belongs to the token server and is never touched.
func (r *signingKeysReconciler) ensureRevocations(ctx context.Context, reader secretReader) error {
	key := types.NamespacedName{Namespace: r.Options.ServerNamespace, Name: credstore.RevocationsSecretName}
	existing, err := reader.get(ctx, key)
	if err != nil || existing != nil {
		return err
	}
	doc, err := credstore.Encode(credstore.Revocations{Entries: []credstore.Revocation{}})
	if err != nil {
		return err
	}
	// Create only: the token servers own the content once it exists. Going
	// through applySecret would, on AlreadyExists (a lagging cache), overwrite
	// every recorded revocation with an empty list.
	err = r.Client.Create(ctx, r.secret(key.Name, credstore.TypeRevocations, doc))
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func (r *signingKeysReconciler) secret(name, secretType string, doc []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: r.Options.ServerNamespace,
			Name:      name,
			Labels: map[string]string{
				authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue,
				credstore.LabelSecretType:   secretType,
			},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{credstore.DataKey: doc},
	}
}

// nextKeyEvent is how long until a current key is due for rotation or a
// retired key for removal, plus a second so the deadline has surely passed.
func nextKeyEvent(set keyset.Set, now time.Time, rotateAfter, retainFor time.Duration) time.Duration {
	next := time.Duration(0)
	consider := func(at time.Time) {
		d := at.Sub(now) + time.Second
		if d < time.Second {
			d = time.Second
		}
		if next == 0 || d < next {
			next = d
		}
	}
	for _, k := range set.Keys {
		if k.RetiredAt != nil {
			consider(k.RetiredAt.Add(retainFor))
		} else if rotateAfter > 0 {
			consider(k.CreatedAt.Add(rotateAfter))
		}
	}
	return next
}
