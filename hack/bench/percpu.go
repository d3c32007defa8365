package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The per-core phase ("cpu"): tokens per server CPU-second. Each server runs
// as a process of its own pinned to one CPU (the real "tokensmith server",
// and this binary as the trivial net/http handler), the same closed-loop
// generator runs on the other CPU, and the server's CPU time is read from
// /proc/<pid>/stat around the timed window. The figure does not depend on
// how busy the rest of the host is, as long as the server gets its core.

// CPURow is one row of the per-core phase.
type CPURow struct {
	Name   string `json:"name"`
	Round  int    `json:"round"`
	Tokens int64  `json:"answers_2xx"`
	Errors int64  `json:"errors"`
	// Seconds is the timed window; ServerCPU the server's CPU time in it.
	Seconds   float64 `json:"seconds"`
	ServerCPU float64 `json:"server_cpu_seconds"`
	PerCPUSec float64 `json:"per_server_cpu_second"`
	// Ratio is PerCPUSec over the mean of the round's trivial rows.
	Ratio float64 `json:"ratio_to_trivial"`
	// ToReference (-scale) is PerCPUSec over the same row of the reference
	// server (the smallest point's verifiers) measured just before it.
	ToReference float64 `json:"ratio_to_reference,omitempty"`
	// Utilization is ServerCPU/Seconds: below 1 the generator, not the server, was the limit.
	Utilization float64 `json:"server_cpu_utilization"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	// GCCycles is how many GC cycles the server ran during the row (GODEBUG=gctrace=1).
	GCCycles int `json:"server_gc_cycles"`
}

// AllocRow is one sub-benchmark of BenchmarkHandler (server/handler_bench_test.go).
type AllocRow struct {
	Name        string  `json:"name"`
	NsPerOp     float64 `json:"ns_per_op"`
	BytesPerOp  int64   `json:"bytes_per_op"`
	AllocsPerOp int64   `json:"allocs_per_op"`
}

// CPUPhase is the per-core phase's result.
type CPUPhase struct {
	ServerCPU    string     `json:"server_cpu"`
	GeneratorCPU string     `json:"generator_cpu"`
	Rows         []CPURow   `json:"rows"`
	Allocs       []AllocRow `json:"handler_benchmark,omitempty"`
	Note         string     `json:"note,omitempty"`
}

const trivialRow = "trivial net/http handler"

type cpuCase struct {
	name string
	reqs []genRequest
	// trivial rows go to the trivial server, the others to tokensmith.
	trivial bool
}

// cpuCases are the rows, in order; the trivial handler is measured first and
// last so that a drift of the host during the round shows.
func cpuCases(fx *fixtures, trivialURL, tokenURL, opaqueToken string) []cpuCase {
	form := "application/x-www-form-urlencoded"
	pick := func(i, parity int) clientCred {
		n := len(fx.clients) / 2
		return fx.clients[((i*7919)%n)*2+parity]
	}
	cc := func(parity int) []genRequest {
		var out []genRequest
		for i := range 1000 {
			c := pick(i, parity)
			out = append(out, genRequest{Method: http.MethodPost, URL: tokenURL + "/oauth/token", ContentType: form,
				Body: []byte(url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID}, "client_secret": {c.Secret}}.Encode())})
		}
		return out
	}
	var session []genRequest
	for i := range 1000 {
		c := pick(i, i%2)
		b, _ := json.Marshal(map[string]string{"api_key": c.APIKey, "secret": c.APISec})
		session = append(session, genRequest{Method: http.MethodPost, URL: fmt.Sprintf("%s/api/auth/session/%d", tokenURL, c.NumericID),
			ContentType: "application/json", Body: b})
	}
	op := fx.clients[1]
	introspect := []genRequest{{Method: http.MethodPost, URL: tokenURL + "/oauth/introspect", ContentType: form,
		Authorization: "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(op.ID)+":"+url.QueryEscape(op.Secret))),
		Body:          []byte(url.Values{"token": {opaqueToken}}.Encode())}}
	trivial := []genRequest{{Method: http.MethodGet, URL: trivialURL + "/trivial"}}
	return []cpuCase{
		{name: trivialRow, reqs: trivial, trivial: true},
		{name: "client_credentials ES256 JWT (/oauth/token)", reqs: cc(0)},
		{name: "client_credentials opaque (/oauth/token)", reqs: cc(1)},
		{name: "session HS512 JWT (/api/auth/session)", reqs: session},
		{name: "introspection of an opaque token (/oauth/introspect, Basic)", reqs: introspect},
		{name: trivialRow, reqs: trivial, trivial: true},
	}
}

// runCPUPhase measures rounds rounds of cpuCases. serverCPU and genCPU are
// taskset CPU lists.
func runCPUPhase(fx *fixtures, exe, kubeconfig, serverCPU, genCPU string, conc int, dur time.Duration, rounds int) (*CPUPhase, error) {
	ph := &CPUPhase{ServerCPU: serverCPU, GeneratorCPU: genCPU}
	triv, trivialURL, err := trivialServer(serverCPU)
	if err != nil {
		return nil, err
	}
	defer triv.stop()
	ts, tokenURL, ready, err := tokenServer(exe, kubeconfig, serverCPU, serverNamespace)
	if err != nil {
		return nil, err
	}
	defer ts.stop()
	logf("cpu: tokensmith server (pid %d) ready in %.2fs, trivial server pid %d, both on CPU %s; generator on CPU %s",
		ts.pid, ready.Seconds(), triv.pid, serverCPU, genCPU)
	op := fx.clients[1]
	hc := newHTTPClient(1)
	opaque, err := fetchToken(hc, tokenURL+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {op.ID}, "client_secret": {op.Secret}}, "")
	if err != nil {
		return nil, err
	}
	cases := cpuCases(fx, trivialURL, tokenURL, opaque)
	// A warm-up, not recorded: the first GC cycles after the initial list
	// free its garbage, and would be charged to the first row.
	if _, err := generate(genCPU, genSpec{Name: "warm-up", Conc: conc, Duration: time.Second, Requests: cases[1].reqs}); err != nil {
		return nil, err
	}
	for round := 1; round <= rounds; round++ {
		var rows []CPURow
		for _, c := range cases {
			p := ts
			if c.trivial {
				p = triv
			}
			_, gc0 := p.log.live()
			r, err := generate(genCPU, genSpec{Name: c.name, Conc: conc, Duration: dur, Requests: c.reqs, ServerPID: p.pid})
			if err != nil {
				return nil, err
			}
			_, gc1 := p.log.live()
			row := CPURow{Name: c.name, Round: round, Tokens: r.Requests - r.Errors, Errors: r.Errors, Seconds: r.Seconds,
				ServerCPU: r.ServerCPUSec, P50ms: r.P50ms, P99ms: r.P99ms, GCCycles: gc1 - gc0}
			if row.ServerCPU > 0 {
				row.PerCPUSec = float64(row.Tokens) / row.ServerCPU
			}
			if row.Seconds > 0 {
				row.Utilization = row.ServerCPU / row.Seconds
			}
			logf("cpu: %-62s %8.0f per server CPU-s (server CPU %.2fs in %.2fs, %d GC cycles, %d errors)", c.name, row.PerCPUSec, row.ServerCPU, row.Seconds, row.GCCycles, row.Errors)
			rows = append(rows, row)
		}
		var triv float64
		var n int
		for _, r := range rows {
			if r.Name == trivialRow {
				triv += r.PerCPUSec
				n++
			}
		}
		if n > 0 && triv > 0 {
			triv /= float64(n)
			for i := range rows {
				rows[i].Ratio = rows[i].PerCPUSec / triv
			}
		}
		ph.Rows = append(ph.Rows, rows...)
	}
	return ph, nil
}

var benchLine = regexp.MustCompile(`^BenchmarkHandler/(\S+?)(-\d+)?\s+\d+\s+([\d.]+) ns/op\s+(\d+) B/op\s+(\d+) allocs/op`)

// handlerAllocs runs BenchmarkHandler (no network) for its bytes and
// allocations per request.
func handlerAllocs(root string) ([]AllocRow, error) {
	cmd := exec.Command("go", "test", "./server", "-run", "^$", "-bench", "^BenchmarkHandler$", "-benchmem", "-benchtime=3000x", "-count=1")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go test -bench Handler: %w: %s", err, out)
	}
	var rows []AllocRow
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		ns, _ := strconv.ParseFloat(m[3], 64)
		b, _ := strconv.ParseInt(m[4], 10, 64)
		a, _ := strconv.ParseInt(m[5], 10, 64)
		rows = append(rows, AllocRow{Name: m[1], NsPerOp: ns, BytesPerOp: b, AllocsPerOp: a})
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("go test -bench Handler printed no results: %s", out)
	}
	return rows, nil
}

func cpuMarkdown(b *strings.Builder, ph *CPUPhase) {
	fmt.Fprintf(b, "\n## Tokens per server CPU-second\n\nEach server alone in its own process on CPU %s (taskset), the closed-loop generator on CPU %s, server CPU time from /proc/<pid>/stat; ratios to the trivial handler of the same round (mean of its two rows).\n\n", ph.ServerCPU, ph.GeneratorCPU)
	b.WriteString("| round | row | per server CPU-s | ratio to trivial | µs of server CPU each | server CPU use | server GC cycles | p50 ms | p99 ms | errors |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range ph.Rows {
		us := 0.0
		if r.PerCPUSec > 0 {
			us = 1e6 / r.PerCPUSec
		}
		fmt.Fprintf(b, "| %d | %s | %.0f | %.3f | %.1f | %.0f%% | %d | %.2f | %.2f | %d |\n", r.Round, r.Name, r.PerCPUSec, r.Ratio, us, 100*r.Utilization, r.GCCycles, r.P50ms, r.P99ms, r.Errors)
	}
	if len(ph.Allocs) > 0 {
		b.WriteString("\nPer request without a network (`go test ./server -run '^$' -bench Handler -benchmem`):\n\n| handler | ns/op | B/op | allocs/op |\n|---|---:|---:|---:|\n")
		for _, a := range ph.Allocs {
			fmt.Fprintf(b, "| %s | %.0f | %d | %d |\n", a.Name, a.NsPerOp, a.BytesPerOp, a.AllocsPerOp)
		}
	}
	if ph.Note != "" {
		fmt.Fprintf(b, "\n%s\n", ph.Note)
	}
}
