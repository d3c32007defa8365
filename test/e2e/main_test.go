// Package e2e runs the real tokensmith binaries (controller and server, as
// separate processes, each acting as the ServiceAccount the Helm chart gives
// it, with the chart's RBAC) against a real kube-apiserver and talks to them
// the way users do: kubectl-style object writes and HTTP calls.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tokensmith/tokensmith/internal/testenv"
)

const serverNamespace = "tokensmith-system"

// suite is the running system every test in this package talks to.
var suite struct {
	k8s        client.Client
	baseURL    string // token server
	adminURL   string // metrics and probes
	kubeconfig string
	// serverKubeconfig acts as the token server's ServiceAccount from the chart.
	serverKubeconfig string
	binary           string
	logs             *syncBuffer // everything both processes wrote
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	env, cfg, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()

	tmp, err := os.MkdirTemp("", "tokensmith-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)

	if suite.binary, err = buildBinary(tmp); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if suite.kubeconfig, err = testenv.WriteAdminKubeconfig(env, "e2e-admin", tmp); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if suite.k8s, err = client.New(cfg, client.Options{Scheme: testenv.Scheme()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	if err := suite.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: serverNamespace}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	controllerSA, serverSA, err := applyChartRBAC(ctx, suite.k8s)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	controllerKubeconfig, err := impersonatingKubeconfig(suite.kubeconfig, controllerSA)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	serverKubeconfig, err := impersonatingKubeconfig(suite.kubeconfig, serverSA)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	suite.serverKubeconfig = serverKubeconfig

	listen, admin := testenv.FreeAddr(), testenv.FreeAddr()
	suite.baseURL, suite.adminURL = "http://"+listen, "http://"+admin
	suite.logs = &syncBuffer{}
	stopController := startProcess(suite.logs, "controller",
		"--kubeconfig", controllerKubeconfig, "--server-namespace", serverNamespace,
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0",
		"--token-url", suite.baseURL+"/oauth/token",
		// The default, said here because TestReadyMeansServed checks the server against it.
		"--propagation-allowance", "1s")
	defer stopController()
	stopServer := startProcess(suite.logs, "server",
		"--kubeconfig", serverKubeconfig, "--namespace", serverNamespace,
		"--listen", listen, "--admin-listen", admin,
		"--issuer", "https://tokensmith.test", "--device-login-client", deviceLoginClientID,
		// 2s instead of 30s, so that the deletion bound is tested without waiting (serviceaccount_test.go).
		"--service-account-verdict-max-age", "2s")
	defer stopServer()

	if err := testenv.WaitReady(suite.adminURL+"/readyz", 60*time.Second); err != nil {
		fmt.Fprintln(os.Stderr, err)
		fmt.Fprintln(os.Stderr, suite.logs.String())
		return 1
	}
	code := m.Run()
	if code == 0 && len(secretsSeen) < 5 {
		fmt.Fprintf(os.Stderr, "FAIL: the leak check saw only %d credentials: the suite did not exercise the system\n", len(secretsSeen))
		code = 1
	}
	if leaks := findLeaks(ctx); len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: credentials or tokens leaked into logs, events or status:\n%s\n", strings.Join(leaks, "\n"))
		code = 1
	}
	if code != 0 {
		fmt.Fprintln(os.Stderr, "---- controller and server logs ----")
		fmt.Fprintln(os.Stderr, suite.logs.String())
	}
	return code
}

func buildBinary(dir string) (string, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "tokensmith")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building tokensmith: %w", err)
	}
	return out, nil
}

// startProcess runs "tokensmith <args>" with its output in logs, and returns a
// function that stops it with SIGTERM, as the kubelet would.
func startProcess(logs *syncBuffer, args ...string) func() {
	cmd := exec.Command(suite.binary, args...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		panic(err)
	}
	return func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	}
}

// syncBuffer collects text for the leak check: both processes' output, and
// error bodies.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
