package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tokensmith/tokensmith/internal/testenv"
)

// The scale curve ("make bench BENCH_FLAGS=-scale"): at each point N, N client
// verifiers and N user verifiers are present (written straight into the server
// namespace, as the default run does), and the token server and the controller
// run as processes of their own, started afresh:
//
//   - token server: start to /readyz (list + index build), live heap after
//     the last GC (GODEBUG=gctrace=1) and RSS after a token load, tokens per
//     server CPU-second (ES256 and opaque, with the trivial handler in the
//     same point for scale);
//   - controller: start to the end of its first pass over everything present
//     (a full resync: every object listed and reconciled), its live heap and
//     RSS, and the writes it made (its own client's POST/PUT/PATCH/DELETE
//     requests, from its rest_client_requests_total metric);
//   - change-to-served: a new OAuthClient until the token server issues a
//     token with the credentials the controller wrote;
//   - then a second controller start over the same objects (the no-op resync).

// scaleTokenURL is the TOKEN_URL the controller writes at every point. It
// must not follow the token server's port, which changes from point to
// point: every consumer Secret would be rewritten at the next start.
const scaleTokenURL = "https://tokensmith.bench/oauth/token"

// ScalePoint is one point of the curve.
type ScalePoint struct {
	Clients int `json:"clients"`
	Users   int `json:"users"`
	// WriteSeconds is how long the verifiers added for this point took to create (32 parallel).
	WriteSeconds float64 `json:"write_seconds"`
	WritePerSec  float64 `json:"creates_per_second"`
	// WriteCPU is the CPU kube-apiserver and etcd used while they were written.
	WriteCPU map[string]float64 `json:"write_cpu_seconds"`

	ServerReadySeconds float64 `json:"server_ready_seconds"`
	// ServerReadyCPU is the CPU used from the server's start to Ready, by process (the list and the index build).
	ServerReadyCPU   map[string]float64 `json:"server_ready_cpu_seconds"`
	ServerLiveHeapMB float64            `json:"server_live_heap_mb"`
	ServerRSSMiB     float64            `json:"server_rss_mib"`
	// Rows are tokens per server CPU-second at this point: -scale-rounds
	// rounds of the trivial handler, ES256 and opaque; Medians are each
	// row's median over the rounds (the ratio is to the trivial handler of
	// the same round).
	Rows    []CPURow    `json:"rows"`
	Medians []MedianRow `json:"medians"`

	ControllerStartSeconds  float64 `json:"controller_first_pass_seconds"`
	ControllerStartRecs     float64 `json:"controller_first_pass_reconciles"`
	ControllerStartWrites   int     `json:"controller_first_pass_writes"`
	ControllerResyncSeconds float64 `json:"controller_resync_seconds"`
	ControllerResyncRecs    float64 `json:"controller_resync_reconciles"`
	ControllerResyncWrites  int     `json:"controller_resync_writes"`
	// StartWrites and ResyncWrites are the writes kube-apiserver served
	// during each pass, by verb and resource (its apiserver_request_total;
	// leases, which kube-apiserver renews for itself, left out).
	StartWrites          map[string]float64 `json:"apiserver_writes_first_pass,omitempty"`
	ResyncWrites         map[string]float64 `json:"apiserver_writes_resync,omitempty"`
	ControllerLiveHeapMB float64            `json:"controller_live_heap_mb"`
	ControllerRSSMiB     float64            `json:"controller_rss_mib"`
	ServedSamples        int                `json:"served_samples"`
	ServedP50ms          float64            `json:"served_p50_ms"`
	ServedP99ms          float64            `json:"served_p99_ms"`
	// IssuedP50ms/IssuedP99ms: from the create to the consumer Secret's first read (the controller's part).
	IssuedP50ms float64 `json:"credentials_p50_ms"`
	IssuedP99ms float64 `json:"credentials_p99_ms"`
	// APIServerRSSMiB and EtcdRSSMiB are the control plane's resident sets at the end of the point.
	APIServerRSSMiB float64 `json:"kube_apiserver_rss_mib"`
	EtcdRSSMiB      float64 `json:"etcd_rss_mib"`
	Note            string  `json:"note,omitempty"`
}

// ScaleResult is the whole curve.
type ScaleResult struct {
	Date       string       `json:"date"`
	GoVersion  string       `json:"go_version"`
	NumCPU     int          `json:"num_cpu"`
	Duration   string       `json:"duration_per_row"`
	Points     []ScalePoint `json:"points"`
	TotalSec   float64      `json:"total_seconds"`
	ServerCPU  string       `json:"server_cpu"`
	GenCPU     string       `json:"generator_cpu"`
	Controller string       `json:"controller_cpus"`
}

func runScale(pointsFlag string, conc int, dur time.Duration, samples int, outDir string) error {
	t0 := time.Now()
	var points []int
	for _, f := range strings.Split(pointsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			return fmt.Errorf("-scale-points: %q", f)
		}
		points = append(points, n)
	}
	slices.Sort(points)
	sp := newSplitter()
	if sp == nil {
		return fmt.Errorf("-scale needs 2 CPUs and taskset")
	}
	res := &ScaleResult{Date: time.Now().UTC().Format(time.RFC3339), GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(),
		Duration: dur.String(), ServerCPU: "0", GenCPU: sp.genCPU, Controller: "any"}
	root, outDir, err := resultsDir(outDir)
	if err != nil {
		return err
	}
	defer func() {
		res.TotalSec = time.Since(t0).Seconds()
		if err := writeScaleReport(res, outDir); err != nil {
			logf("writing results: %v", err)
		}
	}()
	env, cfg, k8s, sink, err := startControlPlane()
	if err != nil {
		return err
	}
	defer func() { _ = env.Stop() }()
	dir, err := os.MkdirTemp("", "tokensmith-bench-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	exe, err := tokensmithBinary(root, dir)
	if err != nil {
		return err
	}
	kc, err := testenv.WriteAdminKubeconfig(env, "bench-admin", dir)
	if err != nil {
		return err
	}
	rc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appsNamespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	triv, trivialURL, err := trivialServer(res.ServerCPU)
	if err != nil {
		return err
	}
	defer triv.stop()

	// The reference: a token server over the smallest point's number of
	// verifiers, in a namespace of its own, measured side by side with the
	// server of every point (row after row, same minute, same CPU), so that
	// "the token rate at 100k against the rate at 1k" does not compare two
	// different minutes of a host whose speed drifts by a third.
	ref, _, err := growFixtures(ctx, k8s, sink, referenceNamespace, nil, points[0], points[0])
	if err != nil {
		return err
	}
	var fx *fixtures
	for _, n := range points {
		pt := ScalePoint{Clients: n, Users: n}
		logf("scale: growing to %d client and %d user verifiers", n, n)
		before := len2(fx)
		cpu0 := cpuSeconds()
		var took time.Duration
		if fx, took, err = growFixtures(ctx, k8s, sink, serverNamespace, fx, n, n); err != nil {
			return err
		}
		pt.WriteSeconds = took.Seconds()
		pt.WritePerSec = float64(2*n-before) / took.Seconds()
		pt.WriteCPU = cpuDelta(cpu0, cpuSeconds())
		logf("scale: %d creates in %.1fs (%.0f/s; CPU %v)", 2*n-before, took.Seconds(), pt.WritePerSec, pt.WriteCPU)

		// Token server.
		cpu0 = cpuSeconds()
		ts, tokenURL, ready, err := tokenServer(exe, kc, res.ServerCPU, serverNamespace)
		if err != nil {
			return err
		}
		pt.ServerReadyCPU = cpuDelta(cpu0, cpuSeconds())
		pt.ServerReadyCPU["tokensmith server"] = procCPU(ts.pid)
		pt.ServerReadySeconds = ready.Seconds()
		logf("scale: token server ready in %.2fs", ready.Seconds())
		rs, refURL, _, err := tokenServer(exe, kc, res.ServerCPU, referenceNamespace)
		if err != nil {
			ts.stop()
			return err
		}
		cases, refCases := cpuCases(fx, trivialURL, tokenURL, ""), cpuCases(ref, trivialURL, refURL, "")
		refName := fmt.Sprintf("reference (%d + %d): ", ref.len(), ref.len())
		type measured struct {
			c   cpuCase
			pid int
		}
		plan := []measured{{cases[0], triv.pid},
			{cpuCase{name: refName + refCases[1].name, reqs: refCases[1].reqs}, rs.pid}, {cases[1], ts.pid},
			{cpuCase{name: refName + refCases[2].name, reqs: refCases[2].reqs}, rs.pid}, {cases[2], ts.pid}}
		// A warm-up of both servers, not recorded: the GC cycles that free
		// the initial list's garbage (hundreds of MB at 100k) come first.
		for _, m := range []measured{plan[1], plan[2]} {
			if _, err := generate(res.GenCPU, genSpec{Name: "warm-up", Conc: conc, Duration: 2 * time.Second, Requests: m.c.reqs}); err != nil {
				rs.stop()
				ts.stop()
				return err
			}
		}
		for round := 1; round <= scaleRounds; round++ {
			settle()
			first := len(pt.Rows)
			for _, m := range plan {
				r, err := generate(res.GenCPU, genSpec{Name: m.c.name, Conc: conc, Duration: dur, Requests: m.c.reqs, ServerPID: m.pid})
				if err != nil {
					rs.stop()
					ts.stop()
					return err
				}
				row := CPURow{Name: m.c.name, Round: round, Tokens: r.Requests - r.Errors, Errors: r.Errors, Seconds: r.Seconds, ServerCPU: r.ServerCPUSec, P50ms: r.P50ms, P99ms: r.P99ms}
				if row.ServerCPU > 0 {
					row.PerCPUSec = float64(row.Tokens) / row.ServerCPU
					row.Utilization = row.ServerCPU / row.Seconds
				}
				pt.Rows = append(pt.Rows, row)
				logf("scale: round %d: %-70s %8.0f per server CPU-s (%d errors)", round, m.c.name, row.PerCPUSec, row.Errors)
			}
			rows := pt.Rows[first:]
			for i := range rows {
				if t := rows[0].PerCPUSec; t > 0 {
					rows[i].Ratio = rows[i].PerCPUSec / t
				}
				if i == 2 || i == 4 { // the point's ES256 and opaque rows, each after its reference row
					if r := rows[i-1].PerCPUSec; r > 0 {
						rows[i].ToReference = rows[i].PerCPUSec / r
					}
				}
			}
		}
		rs.stop()
		pt.Medians = medianRows(pt.Rows, len(plan))
		pt.ServerLiveHeapMB, _ = ts.log.live()
		pt.ServerRSSMiB = mib(procRSS(ts.pid))
		logf("scale: token server live heap %.0f MB, RSS %.1f MiB", pt.ServerLiveHeapMB, pt.ServerRSSMiB)

		// Controller: first pass over everything present, change-to-served, then a restart (no-op resync).
		ctrlStart := func() (*proc, string, error) {
			metricsAddr, probe := testenv.FreeAddr(), testenv.FreeAddr()
			p, err := startProc("tokensmith controller", "", exe, []string{"GODEBUG=gctrace=1"}, "controller",
				"--kubeconfig", kc, "--server-namespace", serverNamespace, "--token-url", scaleTokenURL,
				"--metrics-bind-address", metricsAddr, "--health-probe-bind-address", probe)
			if err != nil {
				return nil, "", err
			}
			return p, "http://" + metricsAddr + "/metrics", nil
		}
		aw0 := apiserverWrites(ctx, rc)
		cp, metricsURL, err := ctrlStart()
		if err != nil {
			ts.stop()
			return err
		}
		secs, recs, writes, err := firstPass(cp, metricsURL, float64(2*n))
		if err != nil {
			cp.stop()
			ts.stop()
			return err
		}
		pt.StartWrites = writesDelta(aw0, apiserverWrites(ctx, rc))
		pt.ControllerStartSeconds, pt.ControllerStartRecs, pt.ControllerStartWrites = secs, recs, writes
		logf("scale: controller first pass: %.0f reconciles in %.2fs, %d writes", recs, secs, writes)
		lat, issued, err := measureServed(ctx, k8s, tokenURL, fmt.Sprintf("served-%d-", n), samples)
		if err == nil {
			// The served samples' last writes (status, events) are the first
			// controller's to make: stopped earlier, the restart would make them
			// and count them as resync writes.
			_, _, _, err = firstPass(cp, metricsURL, 0)
		}
		cp.stop()
		if err != nil {
			ts.stop()
			return err
		}
		pt.ServedSamples = len(lat)
		pt.ServedP50ms, pt.ServedP99ms = percentiles(lat)
		pt.IssuedP50ms, pt.IssuedP99ms = percentiles(issued)
		logf("scale: change-to-served, %d samples: p50 %.0f ms, p99 %.0f ms (credentials written: p50 %.0f ms, p99 %.0f ms)",
			len(lat), pt.ServedP50ms, pt.ServedP99ms, pt.IssuedP50ms, pt.IssuedP99ms)
		aw0 = apiserverWrites(ctx, rc)
		cp, metricsURL, err = ctrlStart()
		if err != nil {
			ts.stop()
			return err
		}
		secs, recs, writes, err = firstPass(cp, metricsURL, float64(2*n))
		pt.ResyncWrites = writesDelta(aw0, apiserverWrites(ctx, rc))
		pt.ControllerLiveHeapMB, _ = cp.log.live()
		pt.ControllerRSSMiB = mib(procRSS(cp.pid))
		cp.stop()
		ts.stop()
		if err != nil {
			return err
		}
		pt.ControllerResyncSeconds, pt.ControllerResyncRecs, pt.ControllerResyncWrites = secs, recs, writes
		logf("scale: controller no-op resync: %.0f reconciles in %.2fs, %d writes; live heap %.0f MB, RSS %.1f MiB",
			recs, secs, writes, pt.ControllerLiveHeapMB, pt.ControllerRSSMiB)
		rss := childRSS()
		pt.APIServerRSSMiB, pt.EtcdRSSMiB = mib(rss["kube-apiserver"]), mib(rss["etcd"])
		res.Points = append(res.Points, pt)
	}
	return nil
}

// MedianRow is one row's median over the rounds of a point.
type MedianRow struct {
	Name      string  `json:"name"`
	PerCPUSec float64 `json:"per_server_cpu_second"`
	Ratio     float64 `json:"ratio_to_trivial"`
	// ToReference is the median of the rounds' ratios to the reference
	// server's same row (0 for the trivial and reference rows).
	ToReference float64 `json:"ratio_to_reference,omitempty"`
}

// medianRows returns the median of each of the first n rows of a round
// over all rounds in rows (n rows per round).
func medianRows(rows []CPURow, n int) []MedianRow {
	out := make([]MedianRow, 0, n)
	for i := 0; i < n && i < len(rows); i++ {
		var per, ratio, toRef []float64
		for j := i; j < len(rows); j += n {
			per, ratio, toRef = append(per, rows[j].PerCPUSec), append(ratio, rows[j].Ratio), append(toRef, rows[j].ToReference)
		}
		out = append(out, MedianRow{Name: rows[i].Name, PerCPUSec: median(per), Ratio: median(ratio), ToReference: median(toRef)})
	}
	return out
}

func median(x []float64) float64 {
	slices.Sort(x)
	if len(x)%2 == 1 {
		return x[len(x)/2]
	}
	return (x[len(x)/2-1] + x[len(x)/2]) / 2
}

// settle waits until the host's CPUs have been at least 85% idle for half
// a second, at most 20 s: after 180,000 fixtures, kube-apiserver and etcd
// go on working (watch cache, compaction, GC) for seconds, and a row
// measured meanwhile shares CPU 0 with them. The rows are per server
// CPU-second, which a busy neighbour still moves (cache, frequency, the
// generator's core).
func settle() {
	deadline := time.Now().Add(20 * time.Second)
	busy0, total0 := hostCPU()
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		busy, total := hostCPU()
		if total > total0 && (busy-busy0)/(total-total0) < 0.15 {
			return
		}
		busy0, total0 = busy, total
	}
	logf("scale: the host did not settle within 20 s (other jobs?); measuring anyway")
}

// hostCPU returns the busy and total jiffies of all CPUs from /proc/stat.
func hostCPU() (busy, total float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i := 1; i < len(f); i++ {
		v, _ := strconv.ParseFloat(f[i], 64)
		if i > 8 { // guest time is counted in user already
			break
		}
		total += v
		if i != 4 && i != 5 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}

// percentiles returns the p50 and p99 of d in milliseconds.
func percentiles(d []time.Duration) (p50, p99 float64) {
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	ms := func(x time.Duration) float64 { return float64(x) / float64(time.Millisecond) }
	return ms(d[len(d)/2]), ms(d[int(0.99*float64(len(d)-1))])
}

func len2(f *fixtures) int {
	if f == nil {
		return 0
	}
	return len(f.clients) + len(f.users)
}

func cpuDelta(a, b map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range b {
		if d := v - a[k]; d > 0.005 {
			out[k] = float64(int(d*100+0.5)) / 100
		}
	}
	return out
}

// childRSS returns the resident set of this process's children by command name.
func childRSS() map[string]uint64 {
	out := map[string]uint64{}
	self := os.Getpid()
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			continue
		}
		f := strings.Fields(s[closing+1:])
		if len(f) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == self {
			out[s[open+1:closing]] += procRSS(pid)
		}
	}
	return out
}

var (
	metricLine = regexp.MustCompile(`^(\w+)(\{[^}]*\})? ([0-9.e+-]+)$`)
	methodRe   = regexp.MustCompile(`method="([A-Z]+)"`)
)

// controllerCounts reads the controller's reconciles so far and its client's
// write requests (POST, PUT, PATCH, DELETE) from its /metrics.
func controllerCounts(metricsURL string) (reconciles float64, writes int, err error) {
	resp, err := http.Get(metricsURL) //nolint:gosec // loopback URL of the bench's own child
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := metricLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, _ := strconv.ParseFloat(m[3], 64)
		switch m[1] {
		case "controller_runtime_reconcile_total":
			reconciles += v
		case "rest_client_requests_total":
			if mm := methodRe.FindStringSubmatch(m[2]); mm != nil {
				switch mm[1] {
				case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
					writes += int(v)
				}
			}
		}
	}
	return reconciles, writes, sc.Err()
}

// firstPass waits until the controller has reconciled at least expect
// objects and its reconcile count has been still for 2 s (its caches of
// 200,000 Secrets take a while to sync, with no reconcile meanwhile), and
// returns the time from the process start to the last reconcile, the
// reconciles and the writes.
func firstPass(p *proc, metricsURL string, expect float64) (seconds, reconciles float64, writes int, err error) {
	start := time.Now()
	var last float64
	lastChange := start
	for time.Since(start) < 5*time.Minute {
		if p.exited() {
			return 0, 0, 0, fmt.Errorf("controller exited; last output:\n%s", p.log)
		}
		time.Sleep(100 * time.Millisecond)
		r, _, err := controllerCounts(metricsURL)
		if err != nil {
			continue
		}
		if r != last {
			last, lastChange = r, time.Now()
		} else if r >= expect && time.Since(lastChange) > 2*time.Second {
			_, writes, _ = controllerCounts(metricsURL)
			return lastChange.Sub(start).Seconds(), r, writes, nil
		}
	}
	return 0, 0, 0, fmt.Errorf("controller's first pass did not end within 5 minutes")
}

var (
	verbRe     = regexp.MustCompile(`verb="([A-Z]+)"`)
	resourceRe = regexp.MustCompile(`resource="([a-z0-9.]*)"`)
	subRe      = regexp.MustCompile(`subresource="([a-z]*)"`)
)

// apiserverWrites reads kube-apiserver's apiserver_request_total and sums
// the write verbs by "VERB resource[/subresource]", leases left out.
func apiserverWrites(ctx context.Context, cs kubernetes.Interface) map[string]float64 {
	out := map[string]float64{}
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(raw), "\n") {
		m := metricLine.FindStringSubmatch(line)
		if m == nil || m[1] != "apiserver_request_total" {
			continue
		}
		verb, res := verbRe.FindStringSubmatch(m[2]), resourceRe.FindStringSubmatch(m[2])
		if verb == nil || res == nil || res[1] == "leases" {
			continue
		}
		switch verb[1] {
		case "POST", "PUT", "PATCH", "DELETE", "APPLY", "DELETECOLLECTION":
		default:
			continue
		}
		key := verb[1] + " " + res[1]
		if sub := subRe.FindStringSubmatch(m[2]); sub != nil && sub[1] != "" {
			key += "/" + sub[1]
		}
		v, _ := strconv.ParseFloat(m[3], 64)
		out[key] += v
	}
	return out
}

func writesDelta(a, b map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range b {
		if d := v - a[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

func writeScaleReport(res *ScaleResult, dir string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# tokensmith scale curve %s\n\n%s, %d CPUs; token server on CPU %s, generator on CPU %s, controller unpinned; %s per row; token rates are medians of %d rounds; the reference server holds the first point's verifiers (its own namespace) and is measured row by row next to each point's server.\n\n",
		res.Date, res.GoVersion, res.NumCPU, res.ServerCPU, res.GenCPU, res.Duration, scaleRounds)
	b.WriteString("| clients + users | creates/s (kube-apiserver, etcd CPU-s) | server Ready s (API server CPU-s in it) | server live heap MB | server RSS MiB | trivial / CPU-s | ES256 / CPU-s (ratio to trivial; **to the reference server**) | opaque / CPU-s (ratio to trivial; **to the reference server**) | change-to-served p50 / p99 ms (credentials written p50 / p99) | controller first pass s (reconciles, writes) | no-op resync s (reconciles, writes) | controller heap MB / RSS MiB | kube-apiserver / etcd RSS MiB |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range res.Points {
		row := func(i int) string {
			if i >= len(p.Medians) {
				return "–"
			}
			m := p.Medians[i]
			return fmt.Sprintf("%.0f (%.3f; **%.2f**)", m.PerCPUSec, m.Ratio, m.ToReference)
		}
		triv := 0.0
		if len(p.Medians) > 0 {
			triv = p.Medians[0].PerCPUSec
		}
		fmt.Fprintf(&b, "| %d + %d | %.0f (%.1f, %.1f) | %.2f (%.1f) | %.0f | %.1f | %.0f | %s | %s | %.0f / %.0f (%.0f / %.0f) | %.2f (%.0f, %d) | %.2f (%.0f, %d) | %.0f / %.1f | %.0f / %.0f |\n",
			p.Clients, p.Users, p.WritePerSec, p.WriteCPU["kube-apiserver"], p.WriteCPU["etcd"],
			p.ServerReadySeconds, p.ServerReadyCPU["kube-apiserver"], p.ServerLiveHeapMB, p.ServerRSSMiB,
			triv, row(2), row(4), p.ServedP50ms, p.ServedP99ms, p.IssuedP50ms, p.IssuedP99ms,
			p.ControllerStartSeconds, p.ControllerStartRecs, p.ControllerStartWrites,
			p.ControllerResyncSeconds, p.ControllerResyncRecs, p.ControllerResyncWrites,
			p.ControllerLiveHeapMB, p.ControllerRSSMiB, p.APIServerRSSMiB, p.EtcdRSSMiB)
	}
	for _, p := range res.Points {
		fmt.Fprintf(&b, "\n- %d + %d: kube-apiserver writes in the controller's first pass %v, in the no-op resync %v", p.Clients, p.Users, p.StartWrites, p.ResyncWrites)
	}
	fmt.Fprintf(&b, "\n\nTotal run time: %.0f s.\n", res.TotalSec)
	md := b.String()
	fmt.Println(md)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	j, err := jsonIndent(res)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "scale.json"), j, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "scale.md"), []byte(md), 0o644)
}
