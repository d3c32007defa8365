package tlscert

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Watch feeds src from the Secret called name in namespace until ctx ends.
// It lists and watches that one Secret (a field selector on its name), with
// the rights the server already has on its namespace's Secrets.
func Watch(ctx context.Context, src *Source, cs kubernetes.Interface, namespace, name string, log logr.Logger) error {
	lw := cache.NewListWatchFromClient(cs.CoreV1().RESTClient(), "secrets", namespace, fields.OneTermEqualSelector("metadata.name", name))
	inf := cache.NewSharedIndexInformer(lw, &corev1.Secret{}, 0, cache.Indexers{})
	update := func(obj any) {
		s, ok := obj.(*corev1.Secret)
		if !ok {
			return
		}
		if err := src.Update(s); err != nil {
			log.Error(err, "TLS Secret cannot serve; the certificate in use stays", "secret", src.Name, "inUseNotAfter", src.NotAfter())
			return
		}
		log.Info("TLS certificate loaded", "secret", src.Name, "notAfter", src.NotAfter(), "resourceVersion", s.ResourceVersion)
	}
	reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    update,
		UpdateFunc: func(_, obj any) { update(obj) },
		DeleteFunc: func(any) {
			src.Gone()
			log.Error(nil, "TLS Secret deleted; the certificate in use stays until it expires", "secret", src.Name, "notAfter", src.NotAfter())
		},
	})
	if err != nil {
		return fmt.Errorf("tlscert: %w", err)
	}
	// Only what a certificate needs is kept in the cache.
	if err := inf.SetTransform(func(obj any) (any, error) {
		if s, ok := obj.(*corev1.Secret); ok {
			return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name, ResourceVersion: s.ResourceVersion},
				Type: s.Type, Data: s.Data}, nil
		}
		return obj, nil
	}); err != nil {
		return fmt.Errorf("tlscert: %w", err)
	}
	go inf.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced, reg.HasSynced) {
		return fmt.Errorf("tlscert: Secret %s never synced: %w", src.Name, ctx.Err())
	}
	<-ctx.Done()
	return nil
}
