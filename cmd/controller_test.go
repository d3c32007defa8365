package cmd

import (
	"io"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/tokensmith/tokensmith/controllers"
)

func TestControllerFlags(t *testing.T) {
	testFlags(t, func(_ *testing.T, args []string) (*controllerFlags, error) {
		return parseControllerFlags(args, io.Discard)
	}, []flagCase[*controllerFlags]{
		{"defaults concurrency and the client-side rate limit", nil, func(t *testing.T, f *controllerFlags) {
			t.Helper()
			if f.Manager.ConcurrentReconciles != controllers.DefaultConcurrentReconciles || f.KubeAPIQPS != controllers.DefaultKubeAPIQPS ||
				f.KubeAPIBurst != controllers.DefaultKubeAPIBurst || f.Options.ServerNamespace != "auth" ||
				f.Manager.LeaderElectionNamespace != "auth" || f.Options.TokenURL != "http://tokensmith.auth.svc/oauth/token" ||
				f.Manager.MetricsBindAddress != ":8080" || f.Manager.HealthProbeBindAddress != ":8081" ||
				f.Manager.LeaderElectionID != "tokensmith-controller" {
				t.Fatalf("%+v", f)
			}
		}, false},
		{"takes the flags", []string{"--concurrent-reconciles", "3", "--kube-api-qps", "20", "--kube-api-burst", "30"},
			func(t *testing.T, f *controllerFlags) {
				t.Helper()
				if f.Manager.ConcurrentReconciles != 3 || f.KubeAPIQPS != 20 || f.KubeAPIBurst != 30 {
					t.Fatalf("%+v", f)
				}
			}, false},
		{"a negative QPS disables the limit", []string{"--kube-api-qps", "-1"}, func(t *testing.T, f *controllerFlags) {
			t.Helper()
			if f.KubeAPIQPS != -1 {
				t.Fatalf("%+v", f)
			}
		}, false},
		{"refuses zero workers", []string{"--concurrent-reconciles", "0"}, nil, true},
		{"refuses a zero QPS", []string{"--kube-api-qps", "0"}, nil, true},
		{"refuses a negative burst", []string{"--kube-api-burst", "-1"}, nil, true},
	})
}

func TestRateLimit(t *testing.T) {
	for _, c := range []struct {
		qps       float64
		burst     int
		wantQPS   float32
		wantBurst int
	}{
		{-1, 0, -1, 0},
		{-5, 300, -1, 0},
		{50, 0, 50, 100},
		{50, 70, 50, 70},
		{0.2, 0, 0.2, 1},
	} {
		cfg := controllers.RateLimit(&rest.Config{QPS: 5, Burst: 10}, c.qps, c.burst)
		if cfg.QPS != c.wantQPS || cfg.Burst != c.wantBurst {
			t.Errorf("RateLimit(%v, %d) = %v/%d, want %v/%d", c.qps, c.burst, cfg.QPS, cfg.Burst, c.wantQPS, c.wantBurst)
		}
	}
}
