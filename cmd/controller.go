package cmd

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/tokensmith/tokensmith/controllers"
	"github.com/tokensmith/tokensmith/internal/memlimit"
	"github.com/tokensmith/tokensmith/internal/password"
)

// controllerFlags are the flags of "tokensmith controller".
type controllerFlags struct {
	kubeconfig        string
	serverNamespace   string
	tokenURL          string
	leaderElect       bool
	leaderElectionID  string
	metricsAddr       string
	probeAddr         string
	keyRotationPeriod time.Duration
	keyRetention      time.Duration
	workers           int
	kubeAPIQPS        float64
	kubeAPIBurst      int
	zap               zap.Options
}

func parseControllerFlags(args []string, stderr io.Writer) (*controllerFlags, error) {
	f := &controllerFlags{}
	fs := flag.NewFlagSet("tokensmith controller", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "Path to a kubeconfig. Default: $KUBECONFIG, the in-cluster config, then ~/.kube/config.")
	fs.StringVar(&f.serverNamespace, "server-namespace", os.Getenv("POD_NAMESPACE"), "Namespace of the token server, where verifiers and signing keys are written. Default: $POD_NAMESPACE.")
	fs.StringVar(&f.tokenURL, "token-url", "", "TOKEN_URL written into consumer Secrets. Default: http://tokensmith.<server-namespace>.svc/oauth/token.")
	fs.BoolVar(&f.leaderElect, "leader-elect", false, "Elect a leader so that only one replica reconciles at a time.")
	fs.StringVar(&f.leaderElectionID, "leader-election-id", "tokensmith-controller", "Name of the leader-election Lease, in the server namespace.")
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", ":8080", `Address of the Prometheus /metrics endpoint; "0" disables it.`)
	fs.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", `Address of /healthz and /readyz; "0" disables them.`)
	fs.DurationVar(&f.keyRotationPeriod, "key-rotation-period", controllers.DefaultKeyRotationPeriod, "How long a signing key is current before a new one replaces it.")
	fs.DurationVar(&f.keyRetention, "key-retention", controllers.DefaultKeyRetention, "How long a replaced signing key still verifies; at least the longest token lifetime (8784h).")
	fs.IntVar(&f.workers, "concurrent-reconciles", controllers.DefaultConcurrentReconciles, "How many OAuthClients, and separately how many Users, are reconciled at once.")
	fs.Float64Var(&f.kubeAPIQPS, "kube-api-qps", controllers.DefaultKubeAPIQPS, "Client-side limit of API server requests per second; negative: none, the API server's Priority and Fairness alone.")
	fs.IntVar(&f.kubeAPIBurst, "kube-api-burst", controllers.DefaultKubeAPIBurst, "Requests allowed at once above --kube-api-qps; 0: twice --kube-api-qps.")
	f.zap.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if f.serverNamespace == "" {
		return nil, errors.New("--server-namespace is required (or set $POD_NAMESPACE)")
	}
	if f.tokenURL == "" {
		f.tokenURL = "http://tokensmith." + f.serverNamespace + ".svc/oauth/token"
	}
	if f.keyRotationPeriod <= 0 || f.keyRetention <= 0 {
		return nil, errors.New("--key-rotation-period and --key-retention must be positive")
	}
	if f.workers < 1 {
		return nil, errors.New("--concurrent-reconciles must be at least 1")
	}
	if f.kubeAPIQPS == 0 || f.kubeAPIBurst < 0 {
		return nil, errors.New("--kube-api-qps must be positive (or negative for no client-side limit), and --kube-api-burst not negative")
	}
	return f, nil
}

func runController(args []string, _, stderr io.Writer) int {
	f, err := parseControllerFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "tokensmith controller: %v\n", err)
		return 2
	}
	f.zap.DestWriter = stderr
	logger := zap.New(zap.UseFlagOptions(&f.zap))
	ctrl.SetLogger(logger)
	limit, source := memlimit.Apply()
	logger.Info("memory", "softLimitBytes", limit, "source", source,
		"concurrentHashes", password.ConcurrentHashes())
	log := logger.WithName("controller")

	cfg, err := restConfig(f.kubeconfig)
	if err != nil {
		log.Error(err, "loading the Kubernetes client configuration")
		return 1
	}
	// Whatever the kubeconfig or controller-runtime chose (client-go's 5/10
	// with --kubeconfig, no limit in-cluster), the flags decide.
	controllers.RateLimit(cfg, f.kubeAPIQPS, f.kubeAPIBurst)
	mgr, err := controllers.NewManager(cfg, controllers.ManagerOptions{
		ConcurrentReconciles:    f.workers,
		MetricsBindAddress:      f.metricsAddr,
		HealthProbeBindAddress:  f.probeAddr,
		LeaderElection:          f.leaderElect,
		LeaderElectionID:        f.leaderElectionID,
		LeaderElectionNamespace: f.serverNamespace,
	})
	if err != nil {
		log.Error(err, "creating the manager")
		return 1
	}
	if err := controllers.Setup(mgr, controllers.Options{
		ServerNamespace:   f.serverNamespace,
		TokenURL:          f.tokenURL,
		KeyRotationPeriod: f.keyRotationPeriod,
		KeyRetention:      f.keyRetention,
	}); err != nil {
		log.Error(err, "setting up the controllers")
		return 1
	}
	log.Info("starting", "serverNamespace", f.serverNamespace, "tokenURL", f.tokenURL, "leaderElection", f.leaderElect,
		"concurrentReconciles", f.workers, "kubeAPIQPS", f.kubeAPIQPS, "kubeAPIBurst", f.kubeAPIBurst)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "manager stopped")
		return 1
	}
	return 0
}

// restConfig loads --kubeconfig when given, else controller-runtime's rules
// ($KUBECONFIG, in-cluster, ~/.kube/config).
func restConfig(path string) (*rest.Config, error) {
	if path != "" {
		return clientcmd.BuildConfigFromFlags("", path)
	}
	return ctrl.GetConfig()
}
