package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/controllers"
	"github.com/tokensmith/tokensmith/internal/testenv"
)

const appsNamespace = "bench-apps"

// ControllerResult holds the controller phase's figures.
type ControllerResult struct {
	Clients          int      `json:"clients"`
	ReadySeconds     float64  `json:"ready_seconds"`
	ResyncReconciles float64  `json:"resync_reconciles"`
	ResyncWrites     int      `json:"resync_writes"`
	ResyncEvents     int      `json:"resync_events"`
	ResyncChanged    []string `json:"resync_changed,omitempty"`
	ServedSamples    int      `json:"served_samples"`
	ServedP50ms      float64  `json:"served_p50_ms"`
	ServedP99ms      float64  `json:"served_p99_ms"`
	ServedMaxms      float64  `json:"served_max_ms"`
	ClientQPS        float32  `json:"controller_client_qps"`
	ClientBurst      int      `json:"controller_client_burst"`
	Workers          int      `json:"controller_workers"`
	// ApplyRequests counts the controller's API requests during the apply phase, by verb and resource.
	ApplyRequests map[string]int `json:"apply_requests,omitempty"`
	// ApplyCPU is the CPU time each process used during the apply phase, in seconds.
	ApplyCPU map[string]float64 `json:"apply_cpu_seconds,omitempty"`
	// From controller-runtime's metrics during the apply phase (oauthclient controller).
	ApplyReconciles       float64 `json:"apply_reconciles"`
	ApplyReconcileSeconds float64 `json:"apply_reconcile_seconds_sum"`
	MaxConcurrent         float64 `json:"max_concurrent_reconciles"`
	// StartupReconciles/StartupSeconds: the manager's first pass over everything already in the cluster
	// (the 20,000 verifier Secrets map to their owners), drained before the 1,000 are applied.
	StartupReconciles float64 `json:"startup_reconciles"`
	StartupSeconds    float64 `json:"startup_seconds"`
	Note              string  `json:"note,omitempty"`
}

func startManager(ctx context.Context, cfg *rest.Config, tokenURL string, workers int) (func(), error) {
	mgr, err := controllers.NewManager(cfg, controllers.ManagerOptions{SkipControllerNameValidation: true, ConcurrentReconciles: workers})
	if err != nil {
		return nil, err
	}
	if err := controllers.Setup(mgr, controllers.Options{ServerNamespace: serverNamespace, TokenURL: tokenURL}); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			logf("manager: %v", err)
		}
	}()
	return func() { cancel(); <-done }, nil
}

// reconcileTotal sums controller_runtime_reconcile_total over every controller.
func reconcileTotal() float64 {
	mfs, err := crmetrics.Registry.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// requestCounter counts a rest.Config's requests by verb and resource while on.
type requestCounter struct {
	on     atomic.Bool
	mu     sync.Mutex
	counts map[string]int
}

func (rc *requestCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if rc.on.Load() {
			key := r.Method + " " + resourceOf(r.URL.Path)
			rc.mu.Lock()
			rc.counts[key]++
			rc.mu.Unlock()
		}
		return rt.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// resourceOf reduces an API path to its resource (and subresource): "secrets", "oauthclients/status".
func resourceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i := 0; i+1 < len(parts); i++ {
		if parts[i] == "namespaces" && i+2 < len(parts) {
			rest := parts[i+2:]
			switch {
			case len(rest) >= 3:
				return rest[0] + "/" + rest[2]
			default:
				return rest[0]
			}
		}
	}
	if len(parts) > 0 {
		return parts[len(parts)-1]
	}
	return path
}

func runControllerPhase(ctx context.Context, cfg *rest.Config, c client.Client, baseURL string, n, samples, workers int, outDir string) (*ControllerResult, error) {
	res := &ControllerResult{Clients: n, ClientQPS: cfg.QPS, ClientBurst: cfg.Burst, Workers: workers}
	rc := &requestCounter{counts: map[string]int{}}
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(rc.wrap)
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appsNamespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	stop, err := startManager(ctx, cfg, baseURL+"/oauth/token", workers)
	if err != nil {
		return nil, err
	}
	// 0. let the manager's initial pass drain, so that the apply phase measures the 1,000 alone.
	su0, suStart := reconcileTotal(), time.Now()
	last, lastChange := su0, time.Now()
	for time.Since(suStart) < 2*time.Minute {
		time.Sleep(200 * time.Millisecond)
		if cur := reconcileTotal(); cur != last {
			last, lastChange = cur, time.Now()
		} else if time.Since(lastChange) > time.Second && cur > su0 {
			break
		}
	}
	res.StartupReconciles, res.StartupSeconds = last-su0, lastChange.Sub(suStart).Seconds()
	logf("controller: initial pass: %.0f reconciles in %.2fs", res.StartupReconciles, res.StartupSeconds)

	// 1. apply n OAuthClients, wait for all Ready with their consumer Secrets.
	// Readiness is counted from a watch: polling LISTs of 1,000 objects ten
	// times a second would load the API server that the controller is waiting on.
	watched, stopWatch, err := watchApps(ctx, cfg)
	if err != nil {
		stop()
		return nil, err
	}
	defer stopWatch()
	cpu0 := cpuSeconds()
	cnt0, sum0, _ := reconcileStats("oauthclient")
	var prof *os.File
	if f, err := os.Create(filepath.Join(outDir, "cpu-controller-apply.pprof")); err == nil {
		if pprof.StartCPUProfile(f) == nil {
			prof = f
		} else {
			_ = f.Close()
		}
	}
	rc.on.Store(true)
	start := time.Now()
	var (
		wg   sync.WaitGroup
		next atomic.Int64
		fail atomic.Value
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				o := &authv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%04d", i), Namespace: appsNamespace},
					Spec: authv1alpha1.OAuthClientSpec{GrantTypes: []authv1alpha1.GrantType{authv1alpha1.GrantClientCredentials}, Scopes: []string{"read"}}}
				if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
					fail.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := fail.Load().(error); ok {
		stop()
		return nil, err
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ready, secrets := countReady(ctx, watched)
		if ready >= n && secrets >= n {
			break
		}
		if time.Now().After(deadline) {
			res.Note = fmt.Sprintf("timed out: %d Ready, %d Secrets", ready, secrets)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	res.ReadySeconds = time.Since(start).Seconds()
	rc.on.Store(false)
	if prof != nil {
		pprof.StopCPUProfile()
		_ = prof.Close()
	}
	for name, sec := range cpuSeconds() {
		if res.ApplyCPU == nil {
			res.ApplyCPU = map[string]float64{}
		}
		res.ApplyCPU[name] = sec - cpu0[name]
	}
	rc.mu.Lock()
	res.ApplyRequests = maps.Clone(rc.counts)
	rc.mu.Unlock()
	cnt1, sum1, maxc := reconcileStats("oauthclient")
	res.ApplyReconciles, res.ApplyReconcileSeconds, res.MaxConcurrent = cnt1-cnt0, sum1-sum0, maxc
	logf("controller: oauthclient reconciles %.0f, summed reconcile time %.2fs, max concurrent reconciles %.0f", res.ApplyReconciles, res.ApplyReconcileSeconds, maxc)
	logf("controller: %d OAuthClients Ready with Secrets in %.2fs", n, res.ReadySeconds)
	time.Sleep(2 * time.Second) // let stragglers (status echoes) settle before the snapshot

	// 2. no-op resync: restart the manager (a full re-list and reconcile of every object) and count writes.
	before, err := versions(ctx, c)
	if err != nil {
		stop()
		return nil, err
	}
	evBefore := countEvents(ctx, c)
	stop()
	r0 := reconcileTotal()
	stop, err = startManager(ctx, cfg, baseURL+"/oauth/token", workers)
	if err != nil {
		return nil, err
	}
	deadline = time.Now().Add(90 * time.Second)
	last, lastChange = r0, time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		cur := reconcileTotal()
		if cur != last {
			last, lastChange = cur, time.Now()
		}
		if cur-r0 >= float64(n) && time.Since(lastChange) > 2*time.Second {
			break
		}
	}
	res.ResyncReconciles = last - r0
	after, err := versions(ctx, c)
	if err != nil {
		stop()
		return nil, err
	}
	for k, v := range after {
		if before[k] != v {
			res.ResyncWrites++
			if len(res.ResyncChanged) < 10 {
				res.ResyncChanged = append(res.ResyncChanged, k)
			}
		}
	}
	res.ResyncEvents = countEvents(ctx, c) - evBefore
	logf("controller: no-op resync: %.0f reconciles, %d objects written, %d events", res.ResyncReconciles, res.ResyncWrites, res.ResyncEvents)

	// 3. change-to-served: create a client, poll until the token server serves it.
	lat, _, err := measureServed(ctx, c, baseURL, "served-", samples)
	if err != nil {
		stop()
		return nil, err
	}
	stop()
	slices.Sort(lat)
	res.ServedSamples = len(lat)
	if len(lat) > 0 {
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		res.ServedP50ms = ms(lat[len(lat)/2])
		res.ServedP99ms = ms(lat[int(0.99*float64(len(lat)-1))])
		res.ServedMaxms = ms(lat[len(lat)-1])
	}
	_ = http.StatusOK
	return res, nil
}

// measureServed creates samples OAuthClients (named prefix + number) one
// after the other, and for each measures the time from the create to the first
// token the server at baseURL issues with the credentials the controller wrote
// (lat), and from the create to the first read of those credentials (issued:
// the controller's share; the rest is the token server's watch and index).
func measureServed(ctx context.Context, c client.Client, baseURL, prefix string, samples int) (lat, issued []time.Duration, _ error) {
	hc := newHTTPClient(2)
	for i := range samples {
		name := fmt.Sprintf("%s%02d", prefix, i)
		t0 := time.Now()
		o := &authv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: appsNamespace},
			Spec: authv1alpha1.OAuthClientSpec{GrantTypes: []authv1alpha1.GrantType{authv1alpha1.GrantClientCredentials}}}
		if err := c.Create(ctx, o); err != nil {
			return nil, nil, err
		}
		var creds map[string][]byte
		ok := false
		for time.Since(t0) < 20*time.Second {
			if creds == nil {
				var s corev1.Secret
				if err := c.Get(ctx, client.ObjectKey{Namespace: appsNamespace, Name: name + "-credentials"}, &s); err == nil {
					creds = s.Data
					issued = append(issued, time.Since(t0))
				}
			}
			if creds != nil {
				form := url.Values{"client_id": {string(creds["CLIENT_ID"])}, "client_secret": {string(creds["CLIENT_SECRET"])}}
				req, _ := post(baseURL+"/v1/auth/token", "application/x-www-form-urlencoded", []byte(form.Encode()))
				if good, _ := doOne(hc, req); good {
					ok = true
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		if ok {
			lat = append(lat, time.Since(t0))
		}
	}
	return lat, issued, nil
}

// watchApps returns a reader of the apps namespace's OAuthClients and Secrets
// served from a watch, and a function that stops it.
func watchApps(ctx context.Context, cfg *rest.Config) (client.Reader, func(), error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 2000, 4000
	ca, err := crcache.New(cfg, crcache.Options{Scheme: testenv.Scheme(), DefaultNamespaces: map[string]crcache.Config{appsNamespace: {}}})
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	for _, o := range []client.Object{&authv1alpha1.OAuthClient{}, &corev1.Secret{}} {
		if _, err := ca.GetInformer(ctx, o); err != nil {
			cancel()
			return nil, nil, err
		}
	}
	go func() { _ = ca.Start(ctx) }()
	if !ca.WaitForCacheSync(ctx) {
		cancel()
		return nil, nil, fmt.Errorf("watching %s never synced", appsNamespace)
	}
	return ca, cancel, nil
}

// cpuSeconds returns the CPU time (user + system) used so far by this process
// and by each of its children (kube-apiserver, etcd), by command name.
func cpuSeconds() map[string]float64 {
	out := map[string]float64{}
	self := os.Getpid()
	read := func(pid int) (name string, ppid int, sec float64, ok bool) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return "", 0, 0, false
		}
		s := string(b)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			return "", 0, 0, false
		}
		f := strings.Fields(s[closing+1:])
		if len(f) < 13 {
			return "", 0, 0, false
		}
		var utime, stime float64
		_, _ = fmt.Sscan(f[11], &utime)
		_, _ = fmt.Sscan(f[12], &stime)
		_, _ = fmt.Sscan(f[1], &ppid)
		return s[open+1 : closing], ppid, (utime + stime) / 100, true // USER_HZ
	}
	if _, _, sec, ok := read(self); ok {
		out["bench"] = sec
	}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		var pid int
		if _, err := fmt.Sscan(d.Name(), &pid); err != nil || pid == self {
			continue
		}
		if name, ppid, sec, ok := read(pid); ok && ppid == self {
			out[name] += sec
		}
	}
	return out
}

func countReady(ctx context.Context, c client.Reader) (ready, secrets int) {
	var l authv1alpha1.OAuthClientList
	if err := c.List(ctx, &l, client.InNamespace(appsNamespace), client.UnsafeDisableDeepCopy); err == nil {
		for _, o := range l.Items {
			if meta.IsStatusConditionTrue(o.Status.Conditions, authv1alpha1.ConditionReady) {
				ready++
			}
		}
	}
	var s corev1.SecretList
	if err := c.List(ctx, &s, client.InNamespace(appsNamespace), client.UnsafeDisableDeepCopy); err == nil {
		secrets = len(s.Items)
	}
	return ready, secrets
}

// reconcileStats reads one controller's reconcile count, summed reconcile
// time and MaxConcurrentReconciles from controller-runtime's metrics.
func reconcileStats(controller string) (count, seconds, maxConcurrent float64) {
	mfs, err := crmetrics.Registry.Gather()
	if err != nil {
		return 0, 0, 0
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			match := false
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == controller {
					match = true
				}
			}
			if !match {
				continue
			}
			switch mf.GetName() {
			case "controller_runtime_reconcile_time_seconds":
				count += float64(m.GetHistogram().GetSampleCount())
				seconds += m.GetHistogram().GetSampleSum()
			case "controller_runtime_max_concurrent_reconciles":
				maxConcurrent = m.GetGauge().GetValue()
			}
		}
	}
	return count, seconds, maxConcurrent
}

// versions maps every OAuthClient and Secret the controller owns to its resourceVersion.
func versions(ctx context.Context, c client.Client) (map[string]string, error) {
	out := map[string]string{}
	var l authv1alpha1.OAuthClientList
	if err := c.List(ctx, &l, client.InNamespace(appsNamespace)); err != nil {
		return nil, err
	}
	for _, o := range l.Items {
		out["oauthclient/"+o.Name] = o.ResourceVersion
	}
	for _, ns := range []string{appsNamespace, serverNamespace} {
		var s corev1.SecretList
		if err := c.List(ctx, &s, client.InNamespace(ns)); err != nil {
			return nil, err
		}
		for _, o := range s.Items {
			out["secret/"+ns+"/"+o.Name] = o.ResourceVersion
		}
	}
	return out, nil
}

func countEvents(ctx context.Context, c client.Client) int {
	var l eventsv1.EventList
	if err := c.List(ctx, &l); err != nil {
		return 0
	}
	return len(l.Items)
}
