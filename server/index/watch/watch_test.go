package watch

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/internal/keyset"
	"github.com/tokensmith/tokensmith/internal/testenv"
	"github.com/tokensmith/tokensmith/server/index"
)

var (
	clientset kubernetes.Interface
	restCfg   *rest.Config
)

func TestMain(m *testing.M) {
	env, cfg, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	restCfg = cfg
	// The server's own config: protobuf.
	clientset = kubernetes.NewForConfigOrDie(ClientConfig(cfg))
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// testLog collects log lines so that tests can check nothing secret is logged.
type testLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *testLog) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, prefix+" "+args)
	}, funcr.Options{})
}

func (l *testLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func namespace(t *testing.T, name string) string {
	t.Helper()
	_, err := clientset.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return name
}

func secret(t *testing.T, ns, name, typ string, doc any) *corev1.Secret {
	t.Helper()
	data, err := credstore.Encode(doc)
	if err != nil {
		t.Fatal(err)
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Data:       map[string][]byte{credstore.DataKey: data},
	}
	if typ != "" {
		s.Labels = map[string]string{credstore.LabelSecretType: typ}
	}
	return s
}

func create(t *testing.T, s *corev1.Secret) {
	t.Helper()
	if _, err := clientset.CoreV1().Secrets(s.Namespace).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func update(t *testing.T, s *corev1.Secret) {
	t.Helper()
	cur, err := clientset.CoreV1().Secrets(s.Namespace).Get(context.Background(), s.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Data = s.Data
	if _, err := clientset.CoreV1().Secrets(s.Namespace).Update(context.Background(), cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func clientDoc(id string) credstore.ClientVerifier {
	return credstore.ClientVerifier{Namespace: "apps", Name: id, ClientID: id, GrantTypes: []string{"client_credentials"},
		TokenFormat: "jwt", Secrets: []credstore.SecretDigests{{ClientSecret: credstore.DigestOf(credstore.PurposeClientSecret, "s3cret-"+id)}}}
}

func keys(t *testing.T) *keyset.Set {
	t.Helper()
	s := &keyset.Set{}
	if _, err := s.Reconcile(time.Now(), 0, 0); err != nil {
		t.Fatal(err)
	}
	return s
}

// eventually polls cond for up to a second: the contract for any change.
func eventually(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < time.Second {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("not within a second: %s", what)
	return 0
}

func run(t *testing.T, ns string, log logr.Logger) *index.Index {
	t.Helper()
	ix := index.New(log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, ix, clientset, ns) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return ix
}

func TestIndexServesSecretsFromTheAPIServer(t *testing.T) {
	ns := namespace(t, "tokensmith-index")
	other := namespace(t, "elsewhere")
	create(t, secret(t, ns, "client-a", credstore.TypeClientVerifier, clientDoc("a")))
	create(t, secret(t, ns, "user-alice", credstore.TypeUserVerifier, credstore.UserVerifier{Username: "alice", PasswordHash: "not-a-hash", CredentialGeneration: 1}))
	create(t, secret(t, ns, "unlabelled", "", clientDoc("unlabelled")))
	create(t, secret(t, other, "client-other", credstore.TypeClientVerifier, clientDoc("other-ns")))
	bad := secret(t, ns, "client-malformed", credstore.TypeClientVerifier, nil)
	bad.Data[credstore.DataKey] = []byte(`{"clientID":"leaky","secrets":"SUPER-SECRET-VALUE"`)
	create(t, bad)

	log := &testLog{}
	ix := run(t, ns, log.logger())
	eventually(t, "the first sync", ix.Synced)

	t.Run("serves what was there before it started", func(t *testing.T) {
		if ix.Snapshot().Client("a") == nil || ix.Snapshot().User("alice") == nil {
			t.Fatal("missing client a or user alice")
		}
		if ix.Snapshot().User("alice").Hash != nil {
			t.Fatal("a malformed password hash parsed")
		}
	})
	t.Run("ignores Secrets without the label or in another namespace", func(t *testing.T) {
		if ix.Snapshot().Client("unlabelled") != nil || ix.Snapshot().Client("other-ns") != nil {
			t.Fatal("served a Secret it must not read")
		}
	})
	t.Run("skips a malformed Secret and logs no data", func(t *testing.T) {
		if ix.Snapshot().Client("leaky") != nil {
			t.Fatal("served a malformed verifier")
		}
		found := false
		for _, l := range log.all() {
			if strings.Contains(l, "SUPER-SECRET") || strings.Contains(l, "leaky") {
				t.Fatalf("log line leaks Secret data: %s", l)
			}
			found = found || strings.Contains(l, "client-malformed")
		}
		if !found {
			t.Fatal("the malformed Secret was not logged")
		}
	})
	t.Run("is synced but not ready without signing keys", func(t *testing.T) {
		if ix.Ready() {
			t.Fatal("ready without a keyring")
		}
	})
	t.Run("becomes ready once the signing keys arrive", func(t *testing.T) {
		create(t, secret(t, ns, credstore.SigningKeysSecretName, credstore.TypeSigningKeys, keys(t)))
		eventually(t, "ready", ix.Ready)
	})
	t.Run("ignores a signing-keys Secret of another name", func(t *testing.T) {
		before := ix.Snapshot().Keyring()
		create(t, secret(t, ns, "rogue-keys", credstore.TypeSigningKeys, keys(t)))
		create(t, secret(t, ns, "client-marker", credstore.TypeClientVerifier, clientDoc("marker")))
		eventually(t, "marker", func() bool { return ix.Snapshot().Client("marker") != nil })
		if ix.Snapshot().Keyring() != before {
			t.Fatal("a rogue signing-keys Secret replaced the keyring")
		}
	})
	t.Run("serves a new client well within a second", func(t *testing.T) {
		create(t, secret(t, ns, "client-b", credstore.TypeClientVerifier, clientDoc("b")))
		d := eventually(t, "client b", func() bool { return ix.Snapshot().Client("b") != nil })
		t.Logf("served after %v", d)
	})
	t.Run("serves a change to a user", func(t *testing.T) {
		update(t, secret(t, ns, "user-alice", credstore.TypeUserVerifier, credstore.UserVerifier{Username: "alice", Disabled: true, CredentialGeneration: 2}))
		eventually(t, "alice disabled", func() bool { u := ix.Snapshot().User("alice"); return u != nil && u.Disabled })
	})
	t.Run("drops a client no TokenPolicy allows within a second, and serves it again when one does", func(t *testing.T) {
		create(t, secret(t, ns, "client-denied", credstore.TypeClientVerifier, clientDoc("denied")))
		eventually(t, "client denied", func() bool { return ix.Snapshot().Client("denied") != nil })
		doc := clientDoc("denied")
		doc.PolicyDenied = true
		update(t, secret(t, ns, "client-denied", credstore.TypeClientVerifier, doc))
		eventually(t, "client denied gone", func() bool { return ix.Snapshot().Client("denied") == nil })
		update(t, secret(t, ns, "client-denied", credstore.TypeClientVerifier, clientDoc("denied")))
		eventually(t, "client denied back", func() bool { return ix.Snapshot().Client("denied") != nil })
	})
	t.Run("drops a user no TokenPolicy allows", func(t *testing.T) {
		create(t, secret(t, ns, "user-mallory", credstore.TypeUserVerifier, credstore.UserVerifier{Username: "mallory", CredentialGeneration: 1}))
		eventually(t, "mallory", func() bool { return ix.Snapshot().User("mallory") != nil })
		update(t, secret(t, ns, "user-mallory", credstore.TypeUserVerifier, credstore.UserVerifier{Username: "mallory", CredentialGeneration: 1, PolicyDenied: true}))
		eventually(t, "mallory gone", func() bool { return ix.Snapshot().User("mallory") == nil })
	})
	t.Run("drops a verifier that turns malformed", func(t *testing.T) {
		s := secret(t, ns, "client-b", credstore.TypeClientVerifier, nil)
		s.Data[credstore.DataKey] = []byte(`[`)
		update(t, s)
		eventually(t, "client b gone", func() bool { return ix.Snapshot().Client("b") == nil })
	})
	t.Run("keeps the last good signing keys when they turn malformed", func(t *testing.T) {
		s := secret(t, ns, credstore.SigningKeysSecretName, credstore.TypeSigningKeys, nil)
		s.Data[credstore.DataKey] = []byte(`{"keys":"nope"}`)
		update(t, s)
		create(t, secret(t, ns, "client-marker2", credstore.TypeClientVerifier, clientDoc("marker2")))
		eventually(t, "marker2", func() bool { return ix.Snapshot().Client("marker2") != nil })
		if !ix.Ready() {
			t.Fatal("a malformed signing-keys update dropped the keyring")
		}
	})
	t.Run("forgets a deleted client", func(t *testing.T) {
		if err := clientset.CoreV1().Secrets(ns).Delete(context.Background(), "client-a", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "client a gone", func() bool { return ix.Snapshot().Client("a") == nil })
	})
	t.Run("serves revocations from the revocations Secret", func(t *testing.T) {
		create(t, secret(t, ns, credstore.RevocationsSecretName, credstore.TypeRevocations,
			credstore.Revocations{Entries: []credstore.Revocation{{ID: "jti-x", ExpiresAt: time.Now().Add(time.Hour)}}}))
		eventually(t, "jti-x revoked", func() bool { return ix.Snapshot().Revoked("jti-x") })
	})
}

func TestIndexCoalescesBursts(t *testing.T) {
	ns := namespace(t, "tokensmith-burst")
	const n = 400
	create(t, secret(t, ns, credstore.SigningKeysSecretName, credstore.TypeSigningKeys, keys(t)))
	for i := range n / 2 {
		create(t, secret(t, ns, fmt.Sprintf("c-%d", i), credstore.TypeClientVerifier, clientDoc(fmt.Sprintf("c-%d", i))))
	}
	ix := run(t, ns, logr.Discard())
	eventually(t, "sync", ix.Ready)
	if c, _ := ix.Snapshot().Counts(); c != n/2 {
		t.Fatalf("after sync: %d clients, want %d", c, n/2)
	}
	if r := ix.Rebuilds(); r != 1 {
		t.Fatalf("the initial list of %d Secrets took %d rebuilds, want 1", n/2, r)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := n / 2; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			create(t, secret(t, ns, fmt.Sprintf("c-%d", i), credstore.TypeClientVerifier, clientDoc(fmt.Sprintf("c-%d", i))))
		}()
	}
	wg.Wait()
	eventually(t, "all clients", func() bool { c, _ := ix.Snapshot().Counts(); return c == n })
	r := ix.Rebuilds() - 1
	t.Logf("%d creates after sync: %d rebuilds", n/2, r)
	if r > n/8 {
		t.Fatalf("%d changes caused %d rebuilds: bursts are not coalesced", n/2, r)
	}
}

func TestParseTransform(t *testing.T) {
	created := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	doc, err := credstore.Encode(clientDoc("a"))
	if err != nil {
		t.Fatal(err)
	}
	ns := strings.Clone("ns") // another string than the watched namespace's, as decoding makes
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Name: "v", Namespace: ns, UID: "u-1", ResourceVersion: "42", CreationTimestamp: created,
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		Labels:        map[string]string{credstore.LabelSecretType: credstore.TypeClientVerifier},
		Annotations:   map[string]string{corev1.LastAppliedConfigAnnotation: `{"data":{"x":"c2VjcmV0"}}`},
	}, Data: map[string][]byte{credstore.DataKey: doc}}
	watched := "ns"
	transform := parseTransform(watched)
	out, err := transform(s)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := out.(*parsedSecret)
	if !ok {
		t.Fatalf("transform gave %T, want *parsedSecret", out)
	}
	if p.name != "v" || p.namespace != "ns" || p.resourceVersion != "42" {
		t.Fatalf("transform kept %+v", p)
	}
	if unsafe.StringData(p.namespace) != unsafe.StringData(watched) {
		t.Fatal("each cached Secret holds its own copy of the namespace")
	}
	// The informer reads its key and the resourceVersion through meta.Accessor.
	if key, err := cache.MetaNamespaceKeyFunc(p); err != nil || key != "ns/v" {
		t.Fatalf("key %q, %v", key, err)
	}
	if m, err := meta.Accessor(p); err != nil || m.GetResourceVersion() != "42" {
		t.Fatalf("accessor %v, %v", m, err)
	}
	// Objects the informer already cached come through again unchanged.
	if again, err := transform(p); err != nil || again != p {
		t.Fatalf("not idempotent: %v, %v", again, err)
	}
	if cp := p.DeepCopyObject().(*parsedSecret); *cp != *p || cp == p {
		t.Fatal("DeepCopyObject")
	}
	// What the index makes of the parse is what it made of the Secret.
	ix, want := index.New(logr.Discard()), index.New(logr.Discard())
	upsert(ix, p)
	want.Upsert(secretOf(s))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ix.Serve(ctx, watched)
	want.Serve(ctx, watched)
	got, exp := ix.Snapshot().Client("a"), want.Snapshot().Client("a")
	if got == nil || !reflect.DeepEqual(got, exp) {
		t.Fatalf("index serves %+v from the parse, %+v from the Secret", got, exp)
	}
	remove(ix, cache.DeletedFinalStateUnknown{Key: "ns/v", Obj: p})
	ix.Serve(ctx, watched)
	if ix.Snapshot().Client("a") != nil {
		t.Fatal("a tombstone did not delete")
	}
	// Other objects only lose their managed fields.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "x"}}}}
	if out, _ := transform(cm); out.(*corev1.ConfigMap).ManagedFields != nil {
		t.Fatal("managed fields kept")
	}
}

// TestInformerCachesOnlyTheParse runs Run's informer against the API server
// (protobuf, as the server does): it caches no Secret, only the parse of
// each, keyed and versioned as the API server has them, through a change and
// a deletion.
func TestInformerCachesOnlyTheParse(t *testing.T) {
	ns := namespace(t, "tokensmith-parsed")
	create(t, secret(t, ns, "client-a", credstore.TypeClientVerifier, clientDoc("a")))
	create(t, secret(t, ns, "client-b", credstore.TypeClientVerifier, clientDoc("b")))
	create(t, secret(t, ns, "unlabelled", "", clientDoc("u")))
	ix := index.New(logr.Discard())
	inf, reg, err := informer(ix, clientset, ns)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go inf.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced, reg.HasSynced) {
		t.Fatal("never synced")
	}
	go ix.Serve(ctx, ns)
	update(t, secret(t, ns, "client-a", credstore.TypeClientVerifier, clientDoc("a2")))
	if err := clientset.CoreV1().Secrets(ns).Delete(ctx, "client-b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a renamed a2, b gone", func() bool {
		s := ix.Snapshot()
		return s.Client("a2") != nil && s.Client("a") == nil && s.Client("b") == nil
	})
	list, err := clientset.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: credstore.LabelSecretType})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, s := range list.Items {
		want[ns+"/"+s.Name] = s.ResourceVersion
	}
	eventually(t, "the cache matches the API server", func() bool {
		got := map[string]string{}
		for _, obj := range inf.GetStore().List() {
			p, ok := obj.(*parsedSecret)
			if !ok {
				t.Fatalf("the informer cached a %T", obj)
			}
			got[p.namespace+"/"+p.name] = p.resourceVersion
		}
		return reflect.DeepEqual(got, want)
	})
}

// roundTripper records the content type of every answer.
type roundTripper struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen []string
}

func (r *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err == nil {
		r.mu.Lock()
		r.seen = append(r.seen, resp.Header.Get("Content-Type"))
		r.mu.Unlock()
	}
	return resp, err
}

// TestClientConfigSpeaksProtobuf: the API server answers the server's
// clientset in protobuf, the encoding that makes the list of every Secret
// cheap at start.
func TestClientConfigSpeaksProtobuf(t *testing.T) {
	cfg := ClientConfig(restCfg)
	rt := &roundTripper{}
	cfg.Wrap(func(next http.RoundTripper) http.RoundTripper { rt.next = next; return rt })
	cs := kubernetes.NewForConfigOrDie(cfg)
	if _, err := cs.CoreV1().Secrets("default").List(context.Background(), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(rt.seen) == 0 || rt.seen[0] != runtime.ContentTypeProtobuf {
		t.Fatalf("answered in %v", rt.seen)
	}
	if restCfg.ContentType != "" {
		t.Fatal("ClientConfig changed the config it was given (the dynamic client's)")
	}
}
