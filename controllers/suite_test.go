package controllers

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/internal/testenv"
)

const (
	serverNamespace = "tokensmith-system"
	tokenURL        = "http://tokensmith.tokensmith-system.svc/oauth/token"
)

// The suite runs one real kube-apiserver and one manager, built by
// NewManager exactly as "tokensmith controller" builds it.
var (
	cfg       *rest.Config
	k8s       client.Client // talks to the API server directly, never through a cache
	clock     = &testClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	suiteMgr  ctrl.Manager
	stopSuite context.CancelFunc
	suiteDone chan struct{}
)

// testClock is the injected Options.Now: tests move it to cross expiries.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testOptions() Options {
	return Options{
		ServerNamespace:   serverNamespace,
		TokenURL:          tokenURL,
		KeyRotationPeriod: DefaultKeyRotationPeriod,
		KeyRetention:      DefaultKeyRetention,
		Now:               clock.Now,
	}
}

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapLevel())))
	env, c, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	cfg = c
	if k8s, err = client.New(cfg, client.Options{Scheme: Scheme()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: serverNamespace}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := startSuiteManager(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	stopSuiteManager()
	return code
}

func startSuiteManager() error {
	mgr, err := NewManager(cfg, ManagerOptions{MetricsBindAddress: "0", SkipControllerNameValidation: true})
	if err != nil {
		return err
	}
	if err := Setup(mgr, testOptions()); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		cancel()
		return fmt.Errorf("cache did not sync")
	}
	suiteMgr, stopSuite, suiteDone = mgr, cancel, done
	return nil
}

func stopSuiteManager() {
	stopSuite()
	<-suiteDone
}

func zapLevel() zapcore.Level {
	if os.Getenv("TEST_VERBOSE_LOGS") != "" {
		return zapcore.DebugLevel
	}
	return zapcore.ErrorLevel
}

// newNamespace gives each test case its own namespace.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// eventually retries f until it returns nil, or fails the test with its last error.
func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("condition not met in time: %v", err)
}

func getOC(t *testing.T, ns, name string) *authv1alpha1.OAuthClient {
	t.Helper()
	oc := &authv1alpha1.OAuthClient{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, oc); err != nil {
		t.Fatal(err)
	}
	return oc
}

func getSecret(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
		t.Fatal(err)
	}
	return s
}

// readyReason waits until obj's Ready condition has reason and returns obj.
func waitReason(t *testing.T, obj client.Object, reason string) {
	t.Helper()
	key := client.ObjectKeyFromObject(obj)
	eventually(t, func() error {
		if err := k8s.Get(context.Background(), key, obj); err != nil {
			return err
		}
		var conds []metav1.Condition
		var observed int64
		switch o := obj.(type) {
		case *authv1alpha1.OAuthClient:
			conds, observed = o.Status.Conditions, o.Status.ObservedGeneration
		case *authv1alpha1.User:
			conds, observed = o.Status.Conditions, o.Status.ObservedGeneration
		}
		c := meta.FindStatusCondition(conds, authv1alpha1.ConditionReady)
		if c == nil || c.Reason != reason || observed != obj.GetGeneration() {
			return fmt.Errorf("%s: Ready condition is %+v, want reason %s", key, c, reason)
		}
		return nil
	})
}

func clientVerifier(t *testing.T, oc *authv1alpha1.OAuthClient) (*credstore.ClientVerifier, error) {
	t.Helper()
	s := &corev1.Secret{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: serverNamespace, Name: credstore.ClientVerifierName(oc.Namespace, oc.Name)}, s); err != nil {
		return nil, err
	}
	var v credstore.ClientVerifier
	if err := credstore.Decode(s.Data[credstore.DataKey], &v); err != nil {
		t.Fatal(err)
	}
	return &v, nil
}

func userVerifier(t *testing.T, u *authv1alpha1.User) (*credstore.UserVerifier, error) {
	t.Helper()
	s := &corev1.Secret{}
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: serverNamespace, Name: credstore.UserVerifierName(u.Namespace, u.Name)}, s); err != nil {
		return nil, err
	}
	var v credstore.UserVerifier
	if err := credstore.Decode(s.Data[credstore.DataKey], &v); err != nil {
		t.Fatal(err)
	}
	return &v, nil
}

func mustNotExist(t *testing.T, key types.NamespacedName) {
	t.Helper()
	err := k8s.Get(context.Background(), key, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("Secret %s: want NotFound, got %v", key, err)
	}
}

// poke changes an annotation so the manager reconciles obj now, as a person
// editing it would; it is how tests make a moved clock take effect.
func poke(t *testing.T, obj client.Object) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{"test/poke":%q}}}`, time.Now().Format(time.RFC3339Nano))
	if err := k8s.Patch(context.Background(), obj, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatal(err)
	}
}

// writeCounter wraps a client and counts every write it makes.
type writeCounter struct {
	client.Client
	writes *atomic.Int64
}

func (w writeCounter) Create(ctx context.Context, o client.Object, opts ...client.CreateOption) error {
	w.writes.Add(1)
	return w.Client.Create(ctx, o, opts...)
}

func (w writeCounter) Update(ctx context.Context, o client.Object, opts ...client.UpdateOption) error {
	w.writes.Add(1)
	return w.Client.Update(ctx, o, opts...)
}

func (w writeCounter) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.PatchOption) error {
	w.writes.Add(1)
	return w.Client.Patch(ctx, o, p, opts...)
}

func (w writeCounter) Delete(ctx context.Context, o client.Object, opts ...client.DeleteOption) error {
	w.writes.Add(1)
	return w.Client.Delete(ctx, o, opts...)
}

func (w writeCounter) Status() client.SubResourceWriter {
	return statusCounter{SubResourceWriter: w.Client.Status(), writes: w.writes}
}

type statusCounter struct {
	client.SubResourceWriter
	writes *atomic.Int64
}

func (s statusCounter) Update(ctx context.Context, o client.Object, opts ...client.SubResourceUpdateOption) error {
	s.writes.Add(1)
	return s.SubResourceWriter.Update(ctx, o, opts...)
}

func (s statusCounter) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
	s.writes.Add(1)
	return s.SubResourceWriter.Patch(ctx, o, p, opts...)
}

// reconcileTotal reads controller-runtime's reconcile counter for one controller.
func reconcileTotal(controller string) float64 {
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		return 0
	}
	var total float64
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == controller {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

func containsAny(s string, values ...string) bool {
	for _, v := range values {
		if v != "" && strings.Contains(s, v) {
			return true
		}
	}
	return false
}
