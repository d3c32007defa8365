package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokensmith/tokensmith/internal/testenv"
)

// A proc is a server the bench runs as a process of its own, pinned to a CPU
// with taskset, so that its CPU time can be read from /proc and is not mixed
// with the load generator's.
type proc struct {
	name string
	cmd  *exec.Cmd
	pid  int
	log  *procLog
	done chan struct{}
}

// procLog keeps the last lines of a child's stderr and what its
// GODEBUG=gctrace=1 lines say: the live heap after the last GC.
type procLog struct {
	mu       sync.Mutex
	tail     []string
	liveMB   float64
	gcCycles int
}

var gcLine = regexp.MustCompile(`^gc (\d+) @.* (\d+)->(\d+)->(\d+) MB`)

func (l *procLog) line(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m := gcLine.FindStringSubmatch(s); m != nil {
		l.gcCycles, _ = strconv.Atoi(m[1])
		l.liveMB, _ = strconv.ParseFloat(m[4], 64)
		return
	}
	l.tail = append(l.tail, s)
	if len(l.tail) > 20 {
		l.tail = l.tail[1:]
	}
}

// live returns the live heap after the last GC (MB, as gctrace prints it) and
// how many GC cycles ran.
func (l *procLog) live() (float64, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.liveMB, l.gcCycles
}

func (l *procLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.tail, "\n")
}

// startProc runs exe with args on cpus (taskset -c; "" runs it unpinned).
// taskset execs the command, so the pid is the server's own.
func startProc(name, cpus, exe string, env []string, args ...string) (*proc, error) {
	cmd := pinned(cpus, exe, args...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, pid: cmd.Process.Pid, log: &procLog{}, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.log.line(sc.Text())
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// pinned is exe with args on cpus (taskset -c; "" leaves it unpinned), at a
// higher priority than the rest of the host when the bench may raise it
// (nice -n -10; as a user nice warns and runs it at the normal priority).
// On a shared host the generator otherwise loses its CPU to other jobs, the
// server waits for requests between them, and a server that wakes for every
// request spends more CPU on each than one kept busy: the figure would
// measure the host. nice and taskset exec the command, so its pid is theirs.
func pinned(cpus, exe string, args ...string) *exec.Cmd {
	cmd := []string{"-n", "-10"}
	if cpus != "" {
		cmd = append(cmd, "taskset", "-c", cpus)
	}
	cmd = append(cmd, exe)
	return exec.Command("nice", append(cmd, args...)...) //nolint:gosec // the bench's own children
}

// stop sends SIGINT and waits (then kills after 10 s).
func (p *proc) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitHTTP polls u until it answers 200, the process exits or timeout passes.
func (p *proc) waitHTTP(u string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s exited before %s answered; last output:\n%s", p.name, u, p.log)
		}
		resp, err := http.Get(u) //nolint:gosec // loopback URL of the bench's own child
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s: %s not ready after %s; last output:\n%s", p.name, u, timeout, p.log)
}

// procCPU is the CPU time (user + system, all threads) pid has used, from
// /proc/<pid>/stat, in seconds; -1 when it cannot be read.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return -1
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// procRSS is pid's resident set from /proc/<pid>/status, in bytes.
func procRSS(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// keepSymbols is -symbols: build tokensmith with its symbol table, so that
// perf record -p <pid> can name functions.
var keepSymbols bool

// tokensmithBinary builds the tokensmith binary of this tree into dir, as
// "make build" does, so that a bench never measures a stale binary (the Go
// build cache makes it quick when nothing changed).
func tokensmithBinary(root, dir string) (string, error) {
	exe := filepath.Join(dir, "tokensmith")
	ldflags := "-s -w"
	if keepSymbols {
		ldflags = ""
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags="+ldflags, "-o", exe, ".")
	cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building tokensmith: %w", err)
	}
	return exe, nil
}

// tokenServer starts "tokensmith server" pinned to cpus, against kubeconfig,
// with throttling off (the bench sends thousands of requests a second from
// one address and for one client), and waits for /readyz. It returns the
// process, the API base URL and the time from start to Ready.
func tokenServer(exe, kubeconfig, cpus, namespace string) (*proc, string, time.Duration, error) {
	listen, admin := testenv.FreeAddr(), testenv.FreeAddr()
	start := time.Now()
	p, err := startProc("tokensmith server", cpus, exe, []string{"GODEBUG=gctrace=1"}, "server",
		"--kubeconfig", kubeconfig, "--namespace", namespace, "--listen", listen, "--admin-listen", admin,
		"--issuer", "https://tokensmith.bench", "--device-login-client", deviceLoginClient,
		"--rate-limit-per-ip=0", "--rate-limit-per-client=0")
	if err != nil {
		return nil, "", 0, err
	}
	if err := p.waitHTTP("http://"+admin+"/readyz", 5*time.Minute); err != nil {
		p.stop()
		return nil, "", 0, err
	}
	return p, "http://" + listen, time.Since(start), nil
}

// trivialServer starts this binary as the trivial handler ("-serve-trivial") pinned to cpus.
func trivialServer(cpus string) (*proc, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	addr := testenv.FreeAddr()
	p, err := startProc("trivial server", cpus, exe, []string{"GODEBUG=gctrace=1"}, "-serve-trivial", addr)
	if err != nil {
		return nil, "", err
	}
	if err := p.waitHTTP("http://"+addr+"/trivial", time.Minute); err != nil {
		p.stop()
		return nil, "", err
	}
	return p, "http://" + addr, nil
}

// serveTrivial is "-serve-trivial addr": the baseline handler alone in a process.
func serveTrivial(addr string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/trivial", trivialHandler)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

// trivialHandler is the baseline: the least a JSON endpoint of net/http does.
func trivialHandler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"ok":true}`))
}

// generate runs the load generator ("-generator") as a child on cpu with
// GOMAXPROCS=1, and returns its Result.
func generate(cpu string, spec genSpec) (Result, error) {
	exe, err := os.Executable()
	if err != nil {
		return Result{}, err
	}
	return startGenerator(pinned(cpu, exe, "-generator"), spec)
}

// startGenerator runs cmd, a load generator ("-generator"), with GOMAXPROCS=1
// and spec on its standard input, and returns its Result.
func startGenerator(cmd *exec.Cmd, spec genSpec) (Result, error) {
	in, err := json.Marshal(spec)
	if err != nil {
		return Result{}, err
	}
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stderr = os.Stderr
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	out, err := cmd.Output()
	if err != nil {
		return Result{}, fmt.Errorf("generator: %w", err)
	}
	var r Result
	if err := json.Unmarshal(out, &r); err != nil {
		return Result{}, fmt.Errorf("generator output: %w", err)
	}
	r.GCShare = 0 // the child's, not the server's
	return r, nil
}
