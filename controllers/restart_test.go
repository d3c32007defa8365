package controllers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/credstore"
)

// workqueueIdle reports whether every workqueue of the named controllers is
// empty and none of their workers is busy.
func workqueueIdle(controllers ...string) bool {
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		return false
	}
	for _, f := range families {
		name := f.GetName()
		if name != "workqueue_depth" && name != "controller_runtime_active_workers" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if (l.GetName() == "name" || l.GetName() == "controller") && containsAny(l.GetValue(), controllers...) && m.GetGauge().GetValue() != 0 {
					return false
				}
			}
		}
	}
	return true
}

// restartSuiteManager stops the suite's manager and starts a new one, then
// waits until the new one has reconciled every OAuthClient and User in the
// cluster at least once (an informer's initial list enqueues each), the
// signing keys too, and its queues are empty.
func restartSuiteManager(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	var ocs authv1alpha1.OAuthClientList
	var users authv1alpha1.UserList
	if err := k8s.List(ctx, &ocs); err != nil {
		t.Fatal(err)
	}
	if err := k8s.List(ctx, &users); err != nil {
		t.Fatal(err)
	}
	ocBefore, userBefore, skBefore := reconcileTotal("oauthclient"), reconcileTotal("user"), reconcileTotal("signingkeys")
	stopSuiteManager()
	if err := startSuiteManager(); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() error {
		if reconcileTotal("oauthclient") < ocBefore+float64(len(ocs.Items)) || reconcileTotal("user") < userBefore+float64(len(users.Items)) ||
			reconcileTotal("signingkeys") < skBefore+1 {
			return fmt.Errorf("the restarted manager has not reconciled every object yet")
		}
		if !workqueueIdle("oauthclient", "user", "signingkeys") {
			return fmt.Errorf("the restarted manager is still working")
		}
		return nil
	})
}

// TestRestartsNeverChangeCredentials restarts the controller ten times over a
// namespace holding every kind of credential, one rotation in its grace
// period: every Secret the controller wrote, and every object's status, stay
// byte for byte and resourceVersion for resourceVersion what they were.
func TestRestartsNeverChangeCredentials(t *testing.T) {
	ns := newNamespace(t)
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "provided"},
		Data: map[string][]byte{credstore.KeyClientSecret: []byte("provided-secret-value")}})
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kim-pw"},
		Data: map[string][]byte{"pw": []byte("kim's password")}})
	objs := []client.Object{
		newOC(ns, "generated", func(oc *authv1alpha1.OAuthClient) { oc.Spec.Scopes = []string{"b", "a"} }),
		newOC(ns, "session", withSession(nextNumericID())),
		newOC(ns, "rotating", func(oc *authv1alpha1.OAuthClient) {
			oc.Spec.RotationGracePeriod = &metav1.Duration{Duration: 48 * time.Hour}
			oc.Spec.TokenFormat = authv1alpha1.TokenFormatOpaque
		}),
		newOC(ns, "provided", func(oc *authv1alpha1.OAuthClient) { oc.Spec.SecretName = "provided"; oc.Spec.ExistingSecret = true }),
		newUser(ns, "jo", "jo-"+ns),
		newUser(ns, "kim", "kim-"+ns, withPasswordSecret("kim-pw")),
	}
	for _, o := range objs {
		create(t, o)
	}
	for _, o := range objs {
		waitReason(t, o, authv1alpha1.ReasonIssued)
	}
	mergePatch(t, objs[2], `{"metadata":{"annotations":{"auth.tokensmith.io/rotate":"r1"}}}`)
	eventually(t, func() error {
		v, err := clientVerifier(t, objs[2].(*authv1alpha1.OAuthClient))
		if err != nil || len(v.Secrets) != 2 {
			return fmt.Errorf("rotation not done: %v", err)
		}
		return nil
	})
	settle(t, ns)
	before := snapshot(t, ns)
	for _, want := range []string{
		"Secret " + ns + "/generated-credentials", "Secret " + ns + "/session-credentials", "Secret " + ns + "/rotating-credentials",
		"Secret " + ns + "/provided", "Secret " + ns + "/jo-password", "Secret " + ns + "/kim-pw",
		"Secret " + serverNamespace + "/" + credstore.ClientVerifierName(ns, "rotating"),
		"Secret " + serverNamespace + "/" + credstore.UserVerifierName(ns, "kim"),
		"Secret " + serverNamespace + "/" + credstore.SigningKeysSecretName,
		"Secret " + serverNamespace + "/" + credstore.RevocationsSecretName,
	} {
		if _, ok := before[want]; !ok {
			t.Fatalf("the snapshot misses %s", want)
		}
	}

	for i := range 10 {
		restartSuiteManager(t)
		if d := diff(before, snapshot(t, ns)); len(d) > 0 {
			sort.Strings(d)
			t.Fatalf("restart %d changed %v", i+1, d)
		}
	}
}

// leaseHolders watches the Lease name in serverNamespace and records each
// change of holder, empty holders (a released Lease) included.
type leaseHolders struct {
	mu      sync.Mutex
	holders []string
}

func (h *leaseHolders) run(ctx context.Context, name string) {
	for ctx.Err() == nil {
		var l coordinationv1.Lease
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: serverNamespace, Name: name}, &l); err == nil {
			holder := ""
			if l.Spec.HolderIdentity != nil {
				holder = *l.Spec.HolderIdentity
			}
			h.mu.Lock()
			if len(h.holders) == 0 || h.holders[len(h.holders)-1] != holder {
				h.holders = append(h.holders, holder)
			}
			h.mu.Unlock()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nonEmpty is the sequence of holders, without releases.
func (h *leaseHolders) nonEmpty() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, x := range h.holders {
		if x != "" && (len(out) == 0 || out[len(out)-1] != x) {
			out = append(out, x)
		}
	}
	return out
}

type electedManager struct {
	mgr    ctrl.Manager
	cancel context.CancelFunc
	done   chan struct{}
	// err is what Start returned, once done is closed.
	err error
	// partition cuts the manager off the API server, as a crashed or
	// partitioned replica is: no renewal, no release, no write.
	partition func()
}

// severableConfig is cfg with a dialer that partition can cut: it closes every
// open connection and refuses new ones.
func severableConfig() (*rest.Config, func()) {
	c := rest.CopyConfig(cfg)
	var mu sync.Mutex
	var conns []net.Conn
	cut := false
	d := &net.Dialer{}
	c.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		defer mu.Unlock()
		if cut {
			return nil, errors.New("partitioned")
		}
		conn, err := d.DialContext(ctx, network, addr)
		if err == nil {
			conns = append(conns, conn)
		}
		return conn, err
	}
	return c, func() {
		mu.Lock()
		defer mu.Unlock()
		cut = true
		for _, conn := range conns {
			_ = conn.Close()
		}
	}
}

func startElected(t *testing.T, lease, tokenURL string) *electedManager {
	t.Helper()
	c, partition := severableConfig()
	mgr, err := NewManager(c, ManagerOptions{
		MetricsBindAddress: BindOff, HealthProbeBindAddress: BindOff, SkipControllerNameValidation: true,
		LeaderElection: true, LeaderElectionID: lease, LeaderElectionNamespace: serverNamespace,
		LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 250 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions()
	opts.TokenURL = tokenURL
	if err := Setup(mgr, opts); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &electedManager{mgr: mgr, cancel: cancel, done: make(chan struct{}), partition: partition}
	go func() {
		defer close(m.done)
		m.err = mgr.Start(ctx)
	}()
	t.Cleanup(m.stop)
	return m
}

func (m *electedManager) stop() {
	m.cancel()
	<-m.done
}

func (m *electedManager) elected() bool {
	select {
	case <-m.mgr.Elected():
		return true
	default:
		return false
	}
}

// TestLeaderElection runs controller replicas on one Lease: only the leader
// reconciles; when it stops (releasing the Lease) another takes over at once,
// and when it is cut off from the API server without releasing anything,
// another takes over once the Lease expires. Which replica
// wrote a consumer Secret shows in its TOKEN_URL, which each replica is
// configured with differently: a follower that acted would rewrite it.
func TestLeaderElection(t *testing.T) {
	// The suite's manager runs without leader election: it would act too.
	stopSuiteManager()
	t.Cleanup(func() {
		if err := startSuiteManager(); err != nil {
			t.Fatal(err)
		}
	})
	const lease = "tokensmith-leader-test"
	urlA, urlB := "http://a.test/oauth/token", "http://b.test/oauth/token"
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	holders := &leaseHolders{}
	go holders.run(watchCtx, lease)

	a := startElected(t, lease, urlA)
	eventually(t, func() error {
		if !a.elected() {
			return fmt.Errorf("the first replica is not leader yet")
		}
		return nil
	})
	b := startElected(t, lease, urlB)
	if !b.mgr.GetCache().WaitForCacheSync(context.Background()) {
		t.Fatal("the second replica's cache did not sync")
	}

	tokenURLOf := func(ns, name string) func() (string, error) {
		return func() (string, error) {
			s := &corev1.Secret{}
			if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
				return "", err
			}
			return string(s.Data[credstore.KeyTokenURL]), nil
		}
	}
	waitTokenURL := func(get func() (string, error), want string) {
		t.Helper()
		eventually(t, func() error {
			got, err := get()
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("TOKEN_URL is %q, want %q", got, want)
			}
			return nil
		})
	}

	ns := newNamespace(t)
	first := newOC(ns, "first")
	create(t, first)
	waitReason(t, first, authv1alpha1.ReasonIssued)
	firstURL := tokenURLOf(ns, "first-credentials")
	waitTokenURL(firstURL, urlA)
	firstSecret := getSecret(t, ns, "first-credentials")
	rv := firstSecret.ResourceVersion
	// Several Lease periods with both running: the follower neither leads nor acts.
	time.Sleep(6 * time.Second)
	if b.elected() {
		t.Fatal("both replicas are leaders")
	}
	if s := getSecret(t, ns, "first-credentials"); s.ResourceVersion != rv {
		t.Fatalf("the consumer Secret was rewritten while the leader ran (TOKEN_URL %q): the follower acted", s.Data[credstore.KeyTokenURL])
	}
	if h := holders.nonEmpty(); len(h) != 1 {
		t.Fatalf("Lease holders while the first replica leads: %v", h)
	}

	// The leader stops (and, as "tokensmith controller" does, releases the Lease).
	stopped := time.Now()
	a.stop()
	if a.err != nil {
		t.Fatalf("the leader stopped with %v", a.err)
	}
	eventually(t, func() error {
		if !b.elected() {
			return fmt.Errorf("the second replica has not taken over")
		}
		return nil
	})
	t.Logf("the second replica took over %s after the leader was told to stop", time.Since(stopped).Round(time.Millisecond))
	second := newOC(ns, "second")
	create(t, second)
	waitReason(t, second, authv1alpha1.ReasonIssued)
	waitTokenURL(tokenURLOf(ns, "second-credentials"), urlB)
	// The new leader also takes over the existing client: only TOKEN_URL, never a credential, changes.
	waitTokenURL(firstURL, urlB)
	old := getOC(t, ns, "first")
	after := getSecret(t, ns, "first-credentials")
	if string(after.Data[credstore.KeyClientID]) != old.Status.ClientID ||
		string(after.Data[credstore.KeyClientSecret]) != string(firstSecret.Data[credstore.KeyClientSecret]) {
		t.Fatal("a credential changed with the leader")
	}

	// A leader that dies without releasing the Lease (cut off from the API
	// server: it can neither renew nor write) is replaced once the Lease
	// expires, and it stops leading on its own after RenewDeadline, before
	// the Lease expires for the others.
	urlC := "http://c.test/oauth/token"
	c := startElected(t, lease, urlC)
	if !c.mgr.GetCache().WaitForCacheSync(context.Background()) {
		t.Fatal("the third replica's cache did not sync")
	}
	if c.elected() {
		t.Fatal("the third replica leads while the second does")
	}
	b.partition()
	cut := time.Now()
	lostLeadership := make(chan time.Duration, 1)
	go func() { <-b.done; lostLeadership <- time.Since(cut) }()
	eventually(t, func() error {
		if !c.elected() {
			return fmt.Errorf("the third replica has not taken over")
		}
		return nil
	})
	tookOver := time.Since(cut)
	select {
	case <-b.done:
		if b.err == nil || !strings.Contains(b.err.Error(), "leader election lost") {
			t.Fatalf("the cut-off leader stopped with %v, want leader election lost", b.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cut-off leader did not stop leading")
	}
	t.Logf("a leader cut off from the API server stopped leading after %s and was replaced after %s",
		(<-lostLeadership).Round(time.Millisecond), tookOver.Round(time.Millisecond))
	third := newOC(ns, "third")
	create(t, third)
	waitReason(t, third, authv1alpha1.ReasonIssued)
	waitTokenURL(tokenURLOf(ns, "third-credentials"), urlC)
	if s := getSecret(t, ns, "first-credentials"); string(s.Data[credstore.KeyClientSecret]) != string(firstSecret.Data[credstore.KeyClientSecret]) {
		t.Fatal("a credential changed with the leader")
	}

	h := holders.nonEmpty()
	if len(h) != 3 || h[0] == h[1] || h[1] == h[2] || h[0] == h[2] {
		t.Fatalf("Lease holders: %v, want the first replica, the second, then the third", h)
	}
	holders.mu.Lock()
	t.Logf("Lease holder transitions: %s", strings.Join(holders.holders, " -> "))
	holders.mu.Unlock()
}
