// Command bench is "make bench": it starts a real kube-apiserver (envtest),
// loads 10,000 client and 10,000 user verifiers, runs the token server and
// the controller in this process, and measures them against a trivial
// net/http handler on the same machine. See docs/performance.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/go-logr/logr/funcr"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/tokensmith/tokensmith/controllers"
	"github.com/tokensmith/tokensmith/internal/testenv"
	"github.com/tokensmith/tokensmith/server"
	"github.com/tokensmith/tokensmith/server/index"
)

type report struct {
	Date        string            `json:"date"`
	GoVersion   string            `json:"go_version"`
	GOMAXPROCS  int               `json:"gomaxprocs"`
	NumCPU      int               `json:"num_cpu"`
	Clients     int               `json:"clients"`
	Users       int               `json:"users"`
	Concurrency int               `json:"concurrency"`
	Duration    string            `json:"duration_per_endpoint"`
	FixturesSec float64           `json:"fixtures_write_seconds"`
	SyncSec     float64           `json:"server_sync_seconds"`
	Endpoints   []Result          `json:"endpoints"`
	Argon2PerS  float64           `json:"argon2id_verifications_per_second,omitempty"`
	Memory      *MemResult        `json:"memory,omitempty"`
	Controller  *ControllerResult `json:"controller,omitempty"`
	CPU         *CPUPhase         `json:"per_core,omitempty"`
	Missing     []string          `json:"missing,omitempty"`
	TotalSec    float64           `json:"total_seconds"`
}

// MemResult is measured in this process after a GC.
type MemResult struct {
	HeapBeforeMiB float64 `json:"heap_before_server_mib"`
	HeapLoadedMiB float64 `json:"heap_with_server_mib"`
	ServerHeapMiB float64 `json:"server_heap_delta_mib"`
	ProcessRSSMiB float64 `json:"process_rss_mib"`
	Note          string  `json:"note"`
}

// splitRows is -split.
var splitRows bool

// fixturesViaAPI is -fixtures-via-api.
var fixturesViaAPI bool

// scaleRounds is -scale-rounds.
var scaleRounds = 5

// cpuRounds is -cpu-rounds.
var cpuRounds = 1

// runSplitRows measures the trivial baseline, v1 client credentials (ES256)
// and the session dialect with the load generator in a child process on its
// own CPU: closed-loop peak, then open loop at half of it, and the trivial
// handler open loop at the same rate.
func runSplitRows(sp *splitter, rep *report, add func(Result), conc int, dur time.Duration, baseBase, baseURL string,
	pick func(w, i, parity int) clientCred, ccBody func(clientCred) []byte) {
	form := "application/x-www-form-urlencoded"
	trivial := []genRequest{{Method: http.MethodGet, URL: baseBase + "/trivial"}}
	var v1, session []genRequest
	for i := range 1000 {
		v1 = append(v1, genRequest{Method: http.MethodPost, URL: baseURL + "/v1/auth/token", ContentType: form, Body: ccBody(pick(0, i, 0))})
		c := pick(0, i, i%2)
		b, _ := json.Marshal(map[string]string{"api_key": c.APIKey, "secret": c.APISec})
		session = append(session, genRequest{Method: http.MethodPost, URL: fmt.Sprintf("%s/api/auth/session/%d", baseURL, c.NumericID), ContentType: "application/json", Body: b})
	}
	run := func(spec genSpec) (Result, bool) {
		r, err := sp.run(spec)
		if err != nil {
			rep.Missing = append(rep.Missing, spec.Name+": "+err.Error())
			logf("%s: %v", spec.Name, err)
			return r, false
		}
		add(r)
		return r, true
	}
	label := fmt.Sprintf("split (server CPUs %s, generator CPU %s): ", sp.serverCPUs, sp.genCPU)
	if _, ok := run(genSpec{Name: label + "baseline: trivial net/http", Conc: conc, Duration: dur, Requests: trivial}); !ok {
		return
	}
	for _, ep := range []struct {
		name string
		reqs []genRequest
	}{{"v1 client-credentials ES256", v1}, {"session (HS512)", session}} {
		peak, ok := run(genSpec{Name: label + ep.name, Conc: conc, Duration: dur, Requests: ep.reqs})
		if !ok || peak.RPS < 2 {
			continue
		}
		rate := peak.RPS / 2
		run(genSpec{Name: label + ep.name + " @ half peak", Conc: conc * 2, Rate: rate, Duration: dur, Requests: ep.reqs})
		run(genSpec{Name: fmt.Sprintf("%sbaseline: trivial @ %.0f/s", label, rate), Conc: conc * 2, Rate: rate, Duration: dur, Requests: trivial})
	}
}

// resultsDir returns the repository root and outDir made absolute (relative
// to the root).
func resultsDir(outDir string) (root, abs string, err error) {
	root, err = testenv.RepoRoot()
	if err != nil || filepath.IsAbs(outDir) {
		return root, outDir, err
	}
	return root, filepath.Join(root, outDir), nil
}

// startControlPlane starts kube-apiserver and etcd, and returns an admin
// client without client-side throttling (the bench is the only client) and
// where verifiers are written (-fixtures-via-api). The caller stops env.
func startControlPlane() (*envtest.Environment, *rest.Config, client.Client, secretSink, error) {
	logf("starting kube-apiserver and etcd")
	env, cfg, err := testenv.Start()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	cfg.QPS, cfg.Burst = 2000, 4000
	k8s, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err == nil {
		var sink secretSink
		if sink, err = newSink(env, k8s, fixturesViaAPI); err == nil {
			return env, cfg, k8s, sink, nil
		}
	}
	_ = env.Stop()
	return nil, nil, nil, nil, err
}

type noRecorder struct{}

func (noRecorder) Record(index.UserRef, string, time.Time) {}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func main() {
	var (
		nClients = flag.Int("clients", 10000, "client verifiers to load")
		nUsers   = flag.Int("users", 10000, "user verifiers to load")
		conc     = flag.Int("c", 32, "concurrent workers per endpoint")
		dur      = flag.Duration("d", 5*time.Second, "duration per endpoint")
		only     = flag.String("only", "", "comma-separated phases to run (default all): cpu,allocs,load,password,memory,controller,profile")
		out      = flag.String("out", "bench/results", "results directory (relative to the repository root)")
		nCtrl    = flag.Int("controller-clients", 1000, "OAuthClients applied in the controller phase")
		samples  = flag.Int("served-samples", 20, "change-to-served samples")
		ctrlQPS  = flag.Float64("controller-qps", 0, "client-side QPS limit of the in-process controller, as --kube-api-qps (0: the default of tokensmith controller)")
		ctrlBur  = flag.Int("controller-burst", 0, "client-side burst of the in-process controller, as --kube-api-burst (0: twice the QPS)")
		ctrlWork = flag.Int("controller-workers", 0, "concurrent reconciles per controller (0: the default of --concurrent-reconciles)")
		split    = flag.Bool("split", true, "also run the key rows with the load generator in a child process on its own CPU (taskset), the servers on the others")
		gen      = flag.Bool("generator", false, "internal: run as the split rows' load generator")
		trivial  = flag.String("serve-trivial", "", "internal: serve the trivial handler alone on this address")
		rounds   = flag.Int("cpu-rounds", 1, "rounds of the per-core phase (tokens per server CPU-second); more show the spread")
		symbols  = flag.Bool("symbols", false, "build the measured tokensmith binary with symbols (for perf record -p)")
		scale    = flag.Bool("scale", false, "run the scale curve (-scale-points) instead of the other phases")
		points   = flag.String("scale-points", "1000,10000,100000", "OAuthClient verifiers (and as many User verifiers) at each point of -scale")
		sRounds  = flag.Int("scale-rounds", 5, "rounds of the token rows at each point of -scale (the table gives their medians)")
		viaAPI   = flag.Bool("fixtures-via-api", false, "create the verifier Secrets through kube-apiserver (about 2 ms of its CPU each) instead of writing them into etcd")
	)
	flag.Parse()
	keepSymbols = *symbols
	fixturesViaAPI = *viaAPI
	scaleRounds = max(*sRounds, 1)
	if *trivial != "" {
		if err := serveTrivial(*trivial); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if *scale {
		if err := runScale(*points, *conc, *dur, *samples, *out); err != nil {
			logf("FAILED: %v", err)
			os.Exit(1)
		}
		return
	}
	if *gen {
		if err := runGenerator(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	splitRows = *split
	phase := func(p string) bool {
		if *only == "" {
			return true
		}
		for _, x := range strings.Split(*only, ",") {
			if strings.TrimSpace(x) == p {
				return true
			}
		}
		return false
	}
	cpuRounds = *rounds
	if err := run(*nClients, *nUsers, *conc, *dur, phase, *out, *nCtrl, *samples, float32(*ctrlQPS), *ctrlBur, *ctrlWork); err != nil {
		logf("FAILED: %v", err)
		os.Exit(1)
	}
}

func run(nClients, nUsers, conc int, dur time.Duration, phase func(string) bool, outDir string, nCtrl, samples int, ctrlQPS float32, ctrlBurst, ctrlWorkers int) error {
	t0 := time.Now()
	ctrl.SetLogger(funcr.New(func(prefix, args string) {
		if strings.Contains(args, `"error"`) || strings.Contains(args, "err") {
			fmt.Fprintln(os.Stderr, prefix, args)
		}
	}, funcr.Options{Verbosity: 0}))
	rep := &report{Date: time.Now().UTC().Format(time.RFC3339), GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		NumCPU: runtime.NumCPU(), Clients: nClients, Users: nUsers, Concurrency: conc, Duration: dur.String()}
	root, outDir, err := resultsDir(outDir)
	if err != nil {
		return err
	}
	defer func() {
		rep.TotalSec = time.Since(t0).Seconds()
		if err := writeReport(rep, outDir); err != nil {
			logf("writing results: %v", err)
		}
	}()

	env, cfg, k8s, sink, err := startControlPlane()
	if err != nil {
		return err
	}
	defer func() { _ = env.Stop() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	logf("writing %d client and %d user verifier Secrets", nClients, nUsers)
	fx, took, err := writeFixtures(ctx, k8s, sink, nClients, nUsers)
	if err != nil {
		return err
	}
	rep.FixturesSec = took.Seconds()
	logf("fixtures written in %.1fs", took.Seconds())
	saClients, err := writeServiceAccountFixtures(ctx, cfg, k8s, 64, benchIssuer)
	if err != nil {
		return err
	}

	var heapBefore uint64
	if phase("memory") {
		heapBefore = heapInUse()
	}
	listen, admin := testenv.FreeAddr(), testenv.FreeAddr()
	baseURL := "http://" + listen
	srvLog := funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{Verbosity: 0})
	syncStart := time.Now()
	go func() {
		err := server.Run(ctx, cfg, server.RunOptions{
			Options: server.Options{Issuer: benchIssuer, DeviceLoginClient: deviceLoginClient, Logger: srvLog,
				DeviceRecorder: noRecorder{}, RateLimits: server.NoRateLimits()},
			Namespace: serverNamespace, Listen: listen, AdminListen: admin,
		})
		if err != nil {
			logf("token server: %v", err)
		}
	}()
	if err := testenv.WaitReady("http://"+admin+"/readyz", 2*time.Minute); err != nil {
		return err
	}
	rep.SyncSec = time.Since(syncStart).Seconds()
	logf("token server ready in %.2fs", rep.SyncSec)

	if phase("memory") {
		loaded := heapInUse()
		rep.Memory = &MemResult{
			HeapBeforeMiB: mib(heapBefore), HeapLoadedMiB: mib(loaded), ServerHeapMiB: mib(loaded) - mib(heapBefore),
			ProcessRSSMiB: mib(rss()),
			Note:          "in-process: heap after runtime.GC(); the delta is the token server (informer cache + index); RSS covers the whole bench process",
		}
		if err := os.MkdirAll(outDir, 0o755); err == nil {
			if f, err := os.Create(filepath.Join(outDir, "heap-loaded.pprof")); err == nil {
				_ = pprof.WriteHeapProfile(f)
				_ = f.Close()
			}
		}
		logf("memory: server heap delta %.1f MiB (process heap %.1f MiB, RSS %.1f MiB)", rep.Memory.ServerHeapMiB, rep.Memory.HeapLoadedMiB, rep.Memory.ProcessRSSMiB)
	} else {
		rep.Missing = append(rep.Missing, "memory (skipped by -only)")
	}

	if phase("cpu") || phase("allocs") {
		rep.CPU = &CPUPhase{}
	}
	if phase("cpu") {
		if sp := newSplitter(); sp == nil {
			rep.Missing = append(rep.Missing, "per-core phase (fewer than 2 CPUs or no taskset)")
		} else if ph, err := perCore(env, root, fx, conc, dur, sp); err != nil {
			rep.Missing = append(rep.Missing, "per-core phase: "+err.Error())
			logf("per-core phase: %v", err)
		} else {
			rep.CPU = ph
		}
	}
	if phase("allocs") {
		logf("allocations per request: go test ./server -bench Handler -benchmem")
		if a, err := handlerAllocs(root); err != nil {
			rep.Missing = append(rep.Missing, "allocations: "+err.Error())
		} else {
			rep.CPU.Allocs = a
		}
	}

	baseBase, stopBase, err := startBaselines(fx.clients)
	if err != nil {
		return err
	}
	defer stopBase()
	hc := newHTTPClient(conc)
	form := "application/x-www-form-urlencoded"
	pick := func(w, i, parity int) clientCred {
		// spread the load over many clients of the right format
		n := len(fx.clients) / 2
		k := ((w*7919 + i) % n) * 2
		if parity == 1 {
			k++
		}
		return fx.clients[k%len(fx.clients)]
	}
	ccBody := func(c clientCred) []byte {
		return []byte(url.Values{"client_id": {c.ID}, "client_secret": {c.Secret}}.Encode())
	}
	add := func(r Result) {
		logf("%-26s %8.0f req/s  p50 %6.2f ms  p99 %7.2f ms  p99.9 %7.2f ms  errors %d %s", r.Name, r.RPS, r.P50ms, r.P99ms, r.P999ms, r.Errors, r.Note)
		rep.Endpoints = append(rep.Endpoints, r)
	}

	if phase("load") || phase("profile") {
		add(closedLoop("baseline: trivial net/http", hc, conc, dur, func(_, _ int) (*http.Request, error) {
			return http.NewRequest(http.MethodGet, baseBase+"/trivial", nil)
		}))
		add(closedLoop("bare: digest + ES256", hc, conc, dur, func(w, i int) (*http.Request, error) {
			return post(baseBase+"/bare", form, ccBody(pick(w, i, 0)))
		}))
		var prof *os.File
		if phase("profile") {
			if err := os.MkdirAll(outDir, 0o755); err == nil {
				if prof, err = os.Create(filepath.Join(outDir, "cpu-v1-client-credentials.pprof")); err == nil {
					_ = pprof.StartCPUProfile(prof)
				}
			}
		}
		add(closedLoop("v1 client-credentials ES256", hc, conc, dur, func(w, i int) (*http.Request, error) {
			return post(baseURL+"/v1/auth/token", form, ccBody(pick(w, i, 0)))
		}))
		if prof != nil {
			pprof.StopCPUProfile()
			_ = prof.Close()
			logf("CPU profile of the v1 client-credentials phase: %s", prof.Name())
		}
	}
	if phase("load") {
		add(closedLoop("v1 client-credentials opaque", hc, conc, dur, func(w, i int) (*http.Request, error) {
			return post(baseURL+"/v1/auth/token", form, ccBody(pick(w, i, 1)))
		}))
		secretRow := closedLoop("oauth2 client_credentials ES256", hc, conc, dur, func(w, i int) (*http.Request, error) {
			c := pick(w, i, 0)
			return post(baseURL+"/oauth/token", form, []byte(url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID}, "client_secret": {c.Secret}}.Encode()))
		})
		add(secretRow)
		add(assertionRow(hc, conc, dur, baseURL, "http://"+admin+"/metrics", saClients, secretRow))
		add(closedLoop("session (HS512)", hc, conc, dur, func(w, i int) (*http.Request, error) {
			c := pick(w, i, w%2)
			b, _ := json.Marshal(map[string]string{"api_key": c.APIKey, "secret": c.APISec})
			return post(fmt.Sprintf("%s/api/auth/session/%d", baseURL, c.NumericID), "application/json", b)
		}))
		// Tokens for the resource endpoints.
		op := fx.clients[1]
		opaque, err := fetchToken(hc, baseURL+"/v1/auth/token", url.Values{"client_id": {op.ID}, "client_secret": {op.Secret}}, "data")
		if err != nil {
			rep.Missing = append(rep.Missing, "introspect: "+err.Error())
		} else {
			add(closedLoop("introspect (opaque token)", hc, conc, dur, func(_, _ int) (*http.Request, error) {
				req, err := post(baseURL+"/oauth/introspect", form, []byte(url.Values{"token": {opaque}}.Encode()))
				if err == nil {
					req.SetBasicAuth(op.ID, op.Secret)
				}
				return req, err
			}))
		}
		jc := fx.clients[2]
		jwtTok, err := fetchToken(hc, baseURL+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {jc.ID}, "client_secret": {jc.Secret}}, "")
		if err != nil {
			rep.Missing = append(rep.Missing, "auth/verify: "+err.Error())
		} else {
			add(closedLoop("auth/verify (ES256 JWT)", hc, conc, dur, func(_, _ int) (*http.Request, error) {
				req, err := http.NewRequest(http.MethodGet, baseURL+"/auth/verify?scope=read", nil)
				if err == nil {
					req.Header.Set("Authorization", "Bearer "+jwtTok)
				}
				return req, err
			}))
		}
		// p99 at half of peak, open loop.
		for _, name := range []string{"v1 client-credentials ES256", "session (HS512)"} {
			var peak float64
			for _, r := range rep.Endpoints {
				if r.Name == name {
					peak = r.RPS
				}
			}
			if peak < 2 {
				continue
			}
			var build reqFunc
			if strings.HasPrefix(name, "v1") {
				build = func(w, i int) (*http.Request, error) {
					return post(baseURL+"/v1/auth/token", form, ccBody(pick(w, i, 0)))
				}
			} else {
				build = func(w, i int) (*http.Request, error) {
					c := pick(w, i, 0)
					b, _ := json.Marshal(map[string]string{"api_key": c.APIKey, "secret": c.APISec})
					return post(fmt.Sprintf("%s/api/auth/session/%d", baseURL, c.NumericID), "application/json", b)
				}
			}
			add(openLoop(name+" @ half peak", hc, conc*2, peak/2, dur, build))
			// The same open loop against the trivial handler at the same rate: what
			// this host (scheduler, loopback, load generator) adds with no server work.
			add(openLoop(fmt.Sprintf("baseline: trivial @ %.0f/s (%s half peak)", peak/2, strings.Fields(name)[0]), hc, conc*2, peak/2, dur,
				func(_, _ int) (*http.Request, error) {
					return http.NewRequest(http.MethodGet, baseBase+"/trivial", nil)
				}))
		}
		if sp := newSplitter(); splitRows && sp != nil {
			runSplitRows(sp, rep, add, conc, dur, baseBase, baseURL, pick, ccBody)
		} else {
			rep.Missing = append(rep.Missing, "split rows (-split=false, fewer than 2 CPUs or no taskset)")
		}
	} else {
		rep.Missing = append(rep.Missing, "endpoint load phases (skipped by -only)")
	}

	if phase("password") {
		rep.Argon2PerS = argon2Rate(dur)
		logf("raw argon2id verification: %.1f/s (%d goroutines)", rep.Argon2PerS, runtime.GOMAXPROCS(0))
		users := fx.users
		dl := fx.clients[0]
		add(closedLoop("device login (argon2id)", hc, conc, dur, func(w, i int) (*http.Request, error) {
			q := url.Values{"username": {users[(w*131+i)%len(users)]}, "password": {userPassword}, "device-info": {"bench-device"}}
			return post(baseURL+"/v1/oauth/?"+q.Encode(), "", nil)
		}))
		add(closedLoop("oauth2 password grant (argon2id)", hc, conc, dur, func(w, i int) (*http.Request, error) {
			return post(baseURL+"/oauth/token", form, []byte(url.Values{"grant_type": {"password"}, "client_id": {dl.ID}, "client_secret": {dl.Secret},
				"username": {users[(w*131+i)%len(users)]}, "password": {userPassword}}.Encode()))
		}))
	} else {
		rep.Missing = append(rep.Missing, "password phases (skipped by -only)")
	}

	if phase("controller") {
		logf("controller phase: %d OAuthClients", nCtrl)
		// The controller runs with tokensmith controller's defaults unless told otherwise.
		ccfg := controllers.RateLimit(rest.CopyConfig(cfg), controllers.DefaultKubeAPIQPS, controllers.DefaultKubeAPIBurst)
		if ctrlQPS != 0 {
			controllers.RateLimit(ccfg, float64(ctrlQPS), ctrlBurst)
		}
		if ctrlWorkers <= 0 {
			ctrlWorkers = controllers.DefaultConcurrentReconciles
		}
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return err
		}
		cr, err := runControllerPhase(ctx, ccfg, k8s, baseURL, nCtrl, samples, ctrlWorkers, outDir)
		if err != nil {
			rep.Missing = append(rep.Missing, "controller: "+err.Error())
			logf("controller phase failed: %v", err)
		} else {
			rep.Controller = cr
		}
	} else {
		rep.Missing = append(rep.Missing, "controller (skipped by -only)")
	}
	return nil
}

// perCore runs the per-core phase: the token server on the first CPU, the
// generator on the last (the splitter's choice).
func perCore(env *envtest.Environment, root string, fx *fixtures, conc int, dur time.Duration, sp *splitter) (*CPUPhase, error) {
	dir, err := os.MkdirTemp("", "tokensmith-bench-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	exe, err := tokensmithBinary(root, dir)
	if err != nil {
		return nil, err
	}
	kc, err := testenv.WriteAdminKubeconfig(env, "bench-admin", dir)
	if err != nil {
		return nil, err
	}
	return runCPUPhase(fx, exe, kc, "0", sp.genCPU, conc, dur, cpuRounds)
}

func fetchToken(c *http.Client, u string, form url.Values, wrap string) (string, error) {
	req, err := post(u, "application/x-www-form-urlencoded", []byte(form.Encode()))
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("getting a token from %s: %d", u, resp.StatusCode)
	}
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		return "", err
	}
	if wrap != "" {
		body, _ = body[wrap].(map[string]any)
	}
	tok, _ := body["access_token"].(string)
	if tok == "" {
		return "", fmt.Errorf("no access_token from %s", u)
	}
	return tok, nil
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			var kb uint64
			_, _ = fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:")), "%d", &kb)
			return kb * 1024
		}
	}
	return 0
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
