// Package watch feeds a server/index.Index from an informer on the labelled
// credential Secrets of one namespace. It is the only part of the index that
// needs client-go: the dialects import server/index alone, so neither they
// nor their fuzz targets compile the Kubernetes client.
package watch

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/index"
)

// ClientConfig is cfg for the clientset Run is given: protobuf, which costs
// kube-apiserver and the server a fraction of JSON to encode and decode (the
// list of every credential Secret at start most of all). It is for built-in
// types only: custom resources have no protobuf encoding, and the dynamic
// client must keep cfg.
func ClientConfig(cfg *rest.Config) *rest.Config {
	pcfg := rest.CopyConfig(cfg)
	pcfg.ContentType = runtime.ContentTypeProtobuf
	pcfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	return pcfg
}

// Run watches the labelled Secrets of namespace into ix until ctx ends. It
// returns an error only when the informer cannot be started or never syncs.
func Run(ctx context.Context, ix *index.Index, cs kubernetes.Interface, namespace string) error {
	inf, reg, err := informer(ix, cs, namespace)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		inf.RunWithContext(ctx)
	}()
	defer func() {
		// Return only once the informer has stopped, as the factory's Shutdown did.
		cancel()
		<-stopped
	}()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced, reg.HasSynced) {
		return fmt.Errorf("index: Secrets in %s never synced: %w", namespace, ctx.Err())
	}
	ix.Serve(ctx, namespace)
	return nil
}

// informer is the informer Run runs: the labelled Secrets of namespace, each
// parsed before it is cached, applied to ix.
func informer(ix *index.Index, cs kubernetes.Interface, namespace string) (cache.SharedIndexInformer, cache.ResourceEventHandlerRegistration, error) {
	// No indexers: the informer's default namespace index would hold every
	// Secret's key a second time, and nothing here looks Secrets up by
	// namespace (the index has its own maps).
	inf := coreinformers.NewFilteredSecretInformer(cs, namespace, 0, cache.Indexers{},
		func(o *metav1.ListOptions) { o.LabelSelector = credstore.LabelSecretType })
	if err := inf.SetTransform(parseTransform(namespace)); err != nil {
		return nil, nil, fmt.Errorf("index: %w", err)
	}
	reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { upsert(ix, obj) },
		UpdateFunc: func(_, obj any) { upsert(ix, obj) },
		DeleteFunc: func(obj any) { remove(ix, obj) },
	})
	if err != nil {
		return nil, nil, fmt.Errorf("index: %w", err)
	}
	return inf, reg, nil
}

func upsert(ix *index.Index, obj any) {
	if p, ok := obj.(*parsedSecret); ok {
		ix.Apply(p.namespace, p.name, p.parsed)
	}
}

func remove(ix *index.Index, obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if p, ok := obj.(*parsedSecret); ok {
		ix.Delete(p.name)
	}
}

// secretOf is what the index reads of s.
func secretOf(s *corev1.Secret) index.Secret {
	data, ok := s.Data[credstore.DataKey]
	// A missing or malformed stamp is the zero time: nothing to measure.
	writtenAt, _ := time.Parse(time.RFC3339Nano, s.Annotations[credstore.AnnotationWrittenAt])
	return index.Secret{Namespace: s.Namespace, Name: s.Name, Created: s.CreationTimestamp.Time, WrittenAt: writtenAt,
		Type: s.Labels[credstore.LabelSecretType], Data: data, HasData: ok}
}

// parsedSecret is what the informer caches of a Secret: the metadata the
// informer itself reads (its key, and the resourceVersion that tells a
// resync from a change) and the index's parse of it. The Secret, its JSON
// document included, is garbage once parsed: at 100,000 + 100,000 verifiers
// the informer's compact copies of the Secrets and their documents were half
// of the server's heap, next to the parsed entries.
type parsedSecret struct {
	name, namespace, resourceVersion string
	parsed                           index.Parsed
}

// GetObjectMeta makes parsedSecret a metav1.ObjectMetaAccessor, which is
// how the informer's key function and its resync check read names and
// versions (meta.Accessor). The ObjectMeta is built per call: a few calls per
// event, against 250 bytes per cached Secret for a stored one.
func (p *parsedSecret) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Name: p.name, Namespace: p.namespace, ResourceVersion: p.resourceVersion}
}

// GetObjectKind and DeepCopyObject make parsedSecret a runtime.Object, for
// the parts of client-go that expect one (the cache mutation detector).
func (p *parsedSecret) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject copies p; the parsed entry is immutable and shared.
func (p *parsedSecret) DeepCopyObject() runtime.Object { cp := *p; return &cp }

// parseTransform replaces each Secret, before the informer caches it, by a
// parsedSecret. It must be idempotent: the informer passes objects it cached
// through it again (resyncs, a watch-list's second store). namespace is the
// watched namespace: every Secret's is the same string, so it is held once.
func parseTransform(namespace string) cache.TransformFunc {
	return func(obj any) (any, error) {
		switch s := obj.(type) {
		case *parsedSecret:
			return s, nil
		case *corev1.Secret:
			ns := s.Namespace
			if ns == namespace {
				ns = namespace
			}
			return &parsedSecret{name: s.Name, namespace: ns, resourceVersion: s.ResourceVersion,
				parsed: index.Parse(secretOf(s))}, nil
		}
		if a, ok := obj.(metav1.ObjectMetaAccessor); ok {
			a.GetObjectMeta().SetManagedFields(nil)
		}
		return obj, nil
	}
}
