package testenv

import (
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// ForTest starts a control plane for one test and stops it when the test
// ends; with -short it skips the test instead.
func ForTest(tb testing.TB) (*envtest.Environment, *rest.Config) {
	tb.Helper()
	return forTest(tb, false)
}

// RestartableForTest is ForTest with an API server that can be stopped and
// started again (env.ControlPlane.APIServer): a fixed certificate directory
// and the port chosen at the first start give it the same address and
// certificates after a restart, so that clients reconnect; etcd keeps running
// and keeps the data.
func RestartableForTest(tb testing.TB) (*envtest.Environment, *rest.Config) {
	tb.Helper()
	return forTest(tb, true)
}

func forTest(tb testing.TB, restartable bool) (*envtest.Environment, *rest.Config) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("starts a kube-apiserver")
	}
	env, err := New()
	if err != nil {
		tb.Fatal(err)
	}
	if restartable {
		env.ControlPlane.APIServer = &envtest.APIServer{CertDir: tb.TempDir()}
	}
	cfg, err := env.Start()
	if err != nil {
		tb.Fatalf("testenv: starting kube-apiserver: %v", err)
	}
	tb.Cleanup(func() { _ = env.Stop() })
	return env, cfg
}
