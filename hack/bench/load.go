package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// reqFunc builds the i-th request of worker w.
type reqFunc func(w, i int) (*http.Request, error)

// Result is one endpoint's measurement.
type Result struct {
	Name        string  `json:"name"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	Requests    int64   `json:"requests"`
	Errors      int64   `json:"errors"`
	RPS         float64 `json:"rps"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	P999ms      float64 `json:"p999_ms"`
	// TargetRPS is set for open-loop (paced) runs.
	TargetRPS float64 `json:"target_rps,omitempty"`
	Ratio     float64 `json:"ratio_to_baseline"`
	// GCShare is the share of the process's CPU capacity spent in the garbage collector during the run.
	GCShare float64 `json:"gc_cpu_share"`
	// ServerCPUSec is the server process's CPU time during the timed window
	// (rows whose server runs as a process of its own).
	ServerCPUSec float64 `json:"server_cpu_seconds,omitempty"`
	Note         string  `json:"note,omitempty"`
}

func newHTTPClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        conns * 2,
			MaxIdleConnsPerHost: conns * 2,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
}

func doOne(c *http.Client, req *http.Request) (bool, error) {
	resp, err := c.Do(req)
	if err != nil {
		return false, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode/100 == 2, nil
}

// closedLoop runs conc workers issuing requests back to back for d.
func closedLoop(name string, c *http.Client, conc int, d time.Duration, build reqFunc) Result {
	return closedLoopProbe(name, c, conc, d, build, nil)
}

// closedLoopProbe is closedLoop that also reads serverCPU, when set, just
// before the timed window opens and once every request of it has been
// answered: Result.ServerCPUSec is the difference.
func closedLoopProbe(name string, c *http.Client, conc int, d time.Duration, build reqFunc, serverCPU func() float64) Result {
	var (
		wg       sync.WaitGroup
		errs     atomic.Int64
		firstErr atomic.Value
		lat      = make([][]time.Duration, conc)
	)
	// Warm up connections.
	warm(c, conc, build)
	var cpu0 float64
	if serverCPU != nil {
		cpu0 = serverCPU()
	}
	g0 := gcCPU()
	start := time.Now()
	deadline := start.Add(d)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := make([]time.Duration, 0, 1<<14)
			for i := 0; ; i++ {
				t0 := time.Now()
				if t0.After(deadline) {
					break
				}
				req, err := build(w, i)
				if err != nil {
					errs.Add(1)
					continue
				}
				ok, err := doOne(c, req)
				l = append(l, time.Since(t0))
				if !ok {
					errs.Add(1)
					if err != nil {
						firstErr.CompareAndSwap(nil, err.Error())
					}
				}
			}
			lat[w] = l
		}()
	}
	wg.Wait()
	el := time.Since(start)
	var cpu1 float64
	if serverCPU != nil {
		cpu1 = serverCPU()
	}
	r := summarize(name, conc, el, lat, errs.Load())
	r.GCShare = (gcCPU() - g0) / (el.Seconds() * float64(runtime.GOMAXPROCS(0)))
	if serverCPU != nil {
		r.ServerCPUSec = cpu1 - cpu0
	}
	if s, ok := firstErr.Load().(string); ok {
		r.Note = "first error: " + s
	}
	return r
}

// openLoop sends requests at a fixed rate for d with up to conc in flight;
// latency is measured from each request's scheduled time (no coordinated omission).
func openLoop(name string, c *http.Client, conc int, rate float64, d time.Duration, build reqFunc) Result {
	warm(c, conc, build)
	interval := time.Duration(float64(time.Second) / rate)
	n := int(d / interval)
	jobs := make(chan time.Time, n)
	var (
		wg   sync.WaitGroup
		errs atomic.Int64
		lat  = make([][]time.Duration, conc)
		svc  = make([][]time.Duration, conc)
	)
	g0 := gcCPU()
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var l, s []time.Duration
			i := 0
			for sched := range jobs {
				if wait := time.Until(sched); wait > 0 {
					time.Sleep(wait)
				}
				req, err := build(w, i)
				i++
				if err != nil {
					errs.Add(1)
					continue
				}
				sent := time.Now()
				ok, _ := doOne(c, req)
				l = append(l, time.Since(sched))
				s = append(s, time.Since(sent))
				if !ok {
					errs.Add(1)
				}
			}
			lat[w], svc[w] = l, s
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- start.Add(time.Duration(i) * interval)
	}
	close(jobs)
	wg.Wait()
	el := time.Since(start)
	r := summarize(name, conc, el, lat, errs.Load())
	r.GCShare = (gcCPU() - g0) / (el.Seconds() * float64(runtime.GOMAXPROCS(0)))
	r.TargetRPS = rate
	sv := summarize(name, conc, time.Since(start), svc, 0)
	r.Note = fmt.Sprintf("latency from scheduled send; from actual send p50 %.2f ms, p99 %.2f ms", sv.P50ms, sv.P99ms)
	return r
}

func warm(c *http.Client, conc int, build reqFunc) {
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if req, err := build(w, 1<<20); err == nil {
				_, _ = doOne(c, req)
			}
		}()
	}
	wg.Wait()
}

func summarize(name string, conc int, el time.Duration, lat [][]time.Duration, errs int64) Result {
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		i := int(p * float64(len(all)-1))
		return float64(all[i]) / float64(time.Millisecond)
	}
	return Result{
		Name: name, Concurrency: conc, Seconds: el.Seconds(), Requests: int64(len(all)), Errors: errs,
		RPS: float64(int64(len(all))-errs) / el.Seconds(), P50ms: pct(0.50), P99ms: pct(0.99), P999ms: pct(0.999),
	}
}

func post(url, contentType string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req, nil
}

func fmtMS(v float64) string { return fmt.Sprintf("%.2f", v) }

// gcCPU is the CPU time this process has spent in the garbage collector.
func gcCPU() float64 {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64 {
		return 0
	}
	return s[0].Value.Float64()
}
