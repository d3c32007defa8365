// Package watch feeds a server/index.Index from an informer on the labelled
// credential Secrets of one namespace. It is the only part of the index that
// needs client-go: the dialects import server/index alone, so neither they
// nor their fuzz targets compile the Kubernetes client.
package watch

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/index"
)

// Run watches the labelled Secrets of namespace into ix until ctx ends. It
// returns an error only when the informer cannot be started or never syncs.
func Run(ctx context.Context, ix *index.Index, cs kubernetes.Interface, namespace string) error {
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0,
		informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = credstore.LabelSecretType }),
		informers.WithTransform(stripManagedFields),
	)
	inf := factory.Core().V1().Secrets().Informer()
	reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { upsert(ix, obj) },
		UpdateFunc: func(_, obj any) { upsert(ix, obj) },
		DeleteFunc: func(obj any) { remove(ix, obj) },
	})
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced, reg.HasSynced) {
		return fmt.Errorf("index: Secrets in %s never synced: %w", namespace, ctx.Err())
	}
	ix.Serve(ctx, namespace)
	return nil
}

func upsert(ix *index.Index, obj any) {
	if s, ok := obj.(*corev1.Secret); ok {
		ix.Upsert(secretOf(s))
	}
}

func remove(ix *index.Index, obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if s, ok := obj.(*corev1.Secret); ok {
		ix.Delete(s.Name)
	}
}

// secretOf is what the index reads of s.
func secretOf(s *corev1.Secret) index.Secret {
	data, ok := s.Data[credstore.DataKey]
	return index.Secret{Namespace: s.Namespace, Name: s.Name, Created: s.CreationTimestamp.Time,
		Type: s.Labels[credstore.LabelSecretType], Data: data, HasData: ok}
}

// stripManagedFields replaces each Secret, before the informer caches it, by
// a copy holding only what secretOf and the informer read: name, namespace, uid,
// resourceVersion, timestamps, the type label and the one data key. With
// 20,000 verifiers the informer's copies were half the server's heap; the
// rest of the metadata (the owner annotation, the managed-by label, managed
// fields, kubectl's last-applied copy of the data) is never read here.
func stripManagedFields(obj any) (any, error) {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		if a, ok := obj.(metav1.ObjectMetaAccessor); ok {
			a.GetObjectMeta().SetManagedFields(nil)
		}
		return obj, nil
	}
	out := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: s.Name, Namespace: s.Namespace, UID: s.UID, ResourceVersion: s.ResourceVersion,
			CreationTimestamp: s.CreationTimestamp, DeletionTimestamp: s.DeletionTimestamp,
			Labels: typeLabels(s.Labels[credstore.LabelSecretType]),
		},
	}
	if v, ok := s.Data[credstore.DataKey]; ok {
		out.Data = map[string][]byte{credstore.DataKey: v}
	}
	return out, nil
}

// sharedTypeLabels are the label maps of the known Secret types, shared by
// every cached Secret of that type: cached objects are never modified.
var sharedTypeLabels = func() map[string]map[string]string {
	m := map[string]map[string]string{}
	for _, t := range []string{credstore.TypeClientVerifier, credstore.TypeUserVerifier, credstore.TypeSigningKeys, credstore.TypeRevocations} {
		m[t] = map[string]string{credstore.LabelSecretType: t}
	}
	return m
}()

func typeLabels(t string) map[string]string {
	if m, ok := sharedTypeLabels[t]; ok {
		return m
	}
	return map[string]string{credstore.LabelSecretType: t}
}
