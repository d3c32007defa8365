package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/internal/testenv"
)

// Issue 15, finding 3: each password verification holds 19 MiB of argon2id
// memory, and the server admitted 2 x GOMAXPROCS of them at once. GOMAXPROCS
// follows the node's cores, not the pod's memory: on a 16-core node 80
// concurrent wrong logins took a server whose chart limit is 256Mi to 1.34 GB.
// Here a second real server runs as the chart runs it (TOKENSMITH_MEMORY_LIMIT
// from limits.memory: 256Mi) but with GOMAXPROCS=16, and takes a flood of
// concurrent wrong logins with throttling off; its peak RSS must stay within
// the limit.
func TestLoginFloodStaysWithinTheChartsMemoryLimit(t *testing.T) {
	_, _, mobile, _ := applyFixtures(t)
	const limit = 256 << 20 // the chart's server.resources.limits.memory

	listen, admin := testenv.FreeAddr(), testenv.FreeAddr()
	logs := &syncBuffer{}
	cmd := exec.Command(suite.binary, "server",
		"--kubeconfig", suite.serverKubeconfig, "--namespace", serverNamespace,
		"--listen", listen, "--admin-listen", admin,
		"--issuer", "https://tokensmith.test", "--device-login-client", deviceLoginClientID,
		"--rate-limit-per-ip=0", "--rate-limit-per-client=0")
	cmd.Env = append(os.Environ(), "GOMAXPROCS=16", "TOKENSMITH_MEMORY_LIMIT="+strconv.Itoa(limit))
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	if err := testenv.WaitReady("http://"+admin+"/readyz", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	base := "http://" + listen

	const concurrent, rounds = 100, 3
	statuses := map[int]int{}
	var mu sync.Mutex
	for round := 0; round < rounds; round++ {
		var wg sync.WaitGroup
		for i := 0; i < concurrent; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				var req *http.Request
				user := fmt.Sprintf("nobody-%d-%d@example.com", round, i)
				if i%2 == 0 {
					form := url.Values{"grant_type": {"password"}, "username": {user}, "password": {"wrong password"}}
					req, _ = http.NewRequest(http.MethodPost, base+"/oauth/token", strings.NewReader(form.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.SetBasicAuth(mobile["CLIENT_ID"], mobile["CLIENT_SECRET"])
				} else {
					q := url.Values{"username": {user}, "password": {"wrong password"}}
					req, _ = http.NewRequest(http.MethodPost, base+"/v1/oauth/?"+q.Encode(), nil)
				}
				resp, err := http.DefaultClient.Do(req)
				code := 0
				if err == nil {
					code = resp.StatusCode
					resp.Body.Close()
				}
				mu.Lock()
				statuses[code]++
				mu.Unlock()
			}(i)
		}
		wg.Wait()
	}
	peak := peakRSS(t, cmd.Process.Pid)
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Rss") || strings.HasPrefix(l, "VmHWM") {
				t.Log(l)
			}
		}
	}
	t.Logf("GOMAXPROCS=16, limit %d MiB: peak RSS %d MiB after %d concurrent wrong logins x %d; answers %v",
		limit>>20, peak>>20, concurrent, rounds, statuses)
	for code := range statuses {
		// 400 invalid_grant, 401 device login, 503 all slots busy: never 500, never a dropped connection.
		if code != http.StatusBadRequest && code != http.StatusUnauthorized && code != http.StatusServiceUnavailable {
			t.Errorf("%d answers with status %d", statuses[code], code)
		}
	}
	if statuses[http.StatusBadRequest]+statuses[http.StatusUnauthorized] == 0 {
		t.Error("no login was verified at all: the flood proves nothing")
	}
	if peak >= limit {
		t.Fatalf("peak RSS %d MiB reached the container limit of %d MiB: the pod would be OOM-killed", peak>>20, limit>>20)
	}
}

// peakRSS is the process's high-water resident set size (VmHWM), in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/<pid>/status")
	return 0
}
