package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"time"
)

// The split rows run the load generator in a child process on its own CPU
// (taskset), with this process (the token server and the baseline servers)
// pinned to the other CPUs. They show how much of the in-process figures is
// the generator competing with the server for the same cores.

// genRequest is one request the child sends (chosen round robin).
type genRequest struct {
	Method, URL, ContentType string
	// Authorization, when set, is sent as that header (introspection's client authentication).
	Authorization string `json:",omitempty"`
	Body          []byte
}

// genSpec is what the child runs: a closed loop, or an open loop at Rate.
type genSpec struct {
	Name     string
	Conc     int
	Rate     float64
	Duration time.Duration
	Requests []genRequest
	// ServerPID, when set, is the server process whose CPU time the
	// generator reads from /proc at the start and the end of the timed
	// window (Result.ServerCPUSec).
	ServerPID int `json:",omitempty"`
}

// runGenerator is the child: it reads a genSpec from stdin and writes a Result to stdout.
func runGenerator() error {
	var spec genSpec
	if err := json.NewDecoder(os.Stdin).Decode(&spec); err != nil {
		return err
	}
	if len(spec.Requests) == 0 {
		return fmt.Errorf("generator: no requests")
	}
	build := func(w, i int) (*http.Request, error) {
		r := spec.Requests[(w*7919+i)%len(spec.Requests)]
		req, err := http.NewRequest(r.Method, r.URL, bytes.NewReader(r.Body))
		if err == nil && r.ContentType != "" {
			req.Header.Set("Content-Type", r.ContentType)
		}
		if err == nil && r.Authorization != "" {
			req.Header.Set("Authorization", r.Authorization)
		}
		return req, err
	}
	hc := newHTTPClient(spec.Conc)
	var res Result
	if spec.Rate > 0 {
		res = openLoop(spec.Name, hc, spec.Conc, spec.Rate, spec.Duration, build)
	} else {
		var probe func() float64
		if spec.ServerPID > 0 {
			probe = func() float64 { return procCPU(spec.ServerPID) }
		}
		res = closedLoopProbe(spec.Name, hc, spec.Conc, spec.Duration, build, probe)
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// splitter runs generator children on genCPU with this process pinned to serverCPUs.
type splitter struct {
	exe                         string
	genCPU, serverCPUs, allCPUs string
}

// newSplitter returns nil when the split cannot run here: fewer than 2 CPUs, or no taskset.
func newSplitter() *splitter {
	n := runtime.NumCPU()
	if n < 2 {
		return nil
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil
	}
	last := strconv.Itoa(n - 1)
	return &splitter{exe: exe, genCPU: last, serverCPUs: "0-" + strconv.Itoa(n-2), allCPUs: "0-" + last}
}

func (s *splitter) pin(cpus string) error {
	out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset: %w: %s", err, out)
	}
	return nil
}

func (s *splitter) run(spec genSpec) (Result, error) {
	if err := s.pin(s.serverCPUs); err != nil {
		return Result{}, err
	}
	procs := runtime.GOMAXPROCS(runtime.NumCPU() - 1)
	defer func() {
		runtime.GOMAXPROCS(procs)
		_ = s.pin(s.allCPUs)
	}()
	return startGenerator(exec.Command("taskset", "-c", s.genCPU, s.exe, "-generator"), spec)
}
