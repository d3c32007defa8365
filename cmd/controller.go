package cmd

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/tokensmith/tokensmith/controllers"
	"github.com/tokensmith/tokensmith/internal/memlimit"
	"github.com/tokensmith/tokensmith/internal/password"
)

// Controller is the wiring of "tokensmith controller", which
// tokensmith-local reuses: the manager's options, the controllers' options and
// the client-side rate limit towards the API server.
type Controller struct {
	Manager controllers.ManagerOptions
	Options controllers.Options
	// KubeAPIQPS and KubeAPIBurst mean what controllers.RateLimit says.
	KubeAPIQPS   float64
	KubeAPIBurst int
}

// DefaultController is "tokensmith controller" without flags, for a token
// server in namespace whose token endpoint is tokenURL.
func DefaultController(namespace, tokenURL string) Controller {
	return Controller{
		Manager: controllers.ManagerOptions{
			MetricsBindAddress:      controllers.DefaultMetricsBindAddress,
			HealthProbeBindAddress:  controllers.DefaultHealthProbeBindAddress,
			LeaderElectionID:        controllers.DefaultLeaderElectionID,
			LeaderElectionNamespace: namespace,
			ConcurrentReconciles:    controllers.DefaultConcurrentReconciles,
		},
		Options: controllers.Options{
			ServerNamespace:   namespace,
			TokenURL:          tokenURL,
			KeyRotationPeriod: controllers.DefaultKeyRotationPeriod,
			KeyRetention:      controllers.DefaultKeyRetention,

			PropagationAllowance: controllers.DefaultPropagationAllowance,
		},
		KubeAPIQPS:   controllers.DefaultKubeAPIQPS,
		KubeAPIBurst: controllers.DefaultKubeAPIBurst,
	}
}

// NewManager builds the manager with every controller set up, its client
// limited as c says (on a copy: cfg is left alone). Start runs it.
func (c Controller) NewManager(cfg *rest.Config) (ctrl.Manager, error) {
	// Whatever the kubeconfig or controller-runtime chose (client-go's 5/10
	// with --kubeconfig, no limit in-cluster), the flags decide.
	cfg = controllers.RateLimit(rest.CopyConfig(cfg), c.KubeAPIQPS, c.KubeAPIBurst)
	mgr, err := controllers.NewManager(cfg, c.Manager)
	if err != nil {
		return nil, err
	}
	if err := controllers.Setup(mgr, c.Options); err != nil {
		return nil, fmt.Errorf("setting up the controllers: %w", err)
	}
	return mgr, nil
}

// controllerFlags are the flags of "tokensmith controller", bound onto the
// defaults of the options they set.
type controllerFlags struct {
	kubeconfig string
	Controller
	zap zap.Options
}

func parseControllerFlags(args []string, stderr io.Writer) (*controllerFlags, error) {
	f := &controllerFlags{Controller: DefaultController(os.Getenv("POD_NAMESPACE"), "")}
	m, o := &f.Manager, &f.Options
	fs := flag.NewFlagSet("tokensmith controller", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "Path to a kubeconfig. Default: $KUBECONFIG, the in-cluster config, then ~/.kube/config.")
	fs.StringVar(&o.ServerNamespace, "server-namespace", o.ServerNamespace, "Namespace of the token server, where verifiers and signing keys are written. Default: $POD_NAMESPACE.")
	fs.StringVar(&o.TokenURL, "token-url", o.TokenURL, "TOKEN_URL written into consumer Secrets. Default: http://tokensmith.<server-namespace>.svc/oauth/token.")
	fs.BoolVar(&m.LeaderElection, "leader-elect", m.LeaderElection, "Elect a leader so that only one replica reconciles at a time.")
	fs.StringVar(&m.LeaderElectionID, "leader-election-id", m.LeaderElectionID, "Name of the leader-election Lease, in the server namespace.")
	fs.StringVar(&m.MetricsBindAddress, "metrics-bind-address", m.MetricsBindAddress, `Address of the Prometheus /metrics endpoint; "0" disables it.`)
	fs.StringVar(&m.HealthProbeBindAddress, "health-probe-bind-address", m.HealthProbeBindAddress, `Address of /healthz and /readyz; "0" disables them.`)
	fs.DurationVar(&o.KeyRotationPeriod, "key-rotation-period", o.KeyRotationPeriod, "How long a signing key is current before a new one replaces it.")
	fs.DurationVar(&o.KeyRetention, "key-retention", o.KeyRetention, "How long a replaced signing key still verifies; at least the longest token lifetime (8784h).")
	fs.DurationVar(&o.PropagationAllowance, "propagation-allowance", o.PropagationAllowance, "How long after its credentials change an object is Ready=False, reason Propagating, while the token server replicas load them; 0: Ready as soon as they are stored.")
	fs.IntVar(&m.ConcurrentReconciles, "concurrent-reconciles", m.ConcurrentReconciles, "How many OAuthClients, and separately how many Users, are reconciled at once.")
	fs.Float64Var(&f.KubeAPIQPS, "kube-api-qps", f.KubeAPIQPS, "Client-side limit of API server requests per second; negative: none, the API server's Priority and Fairness alone.")
	fs.IntVar(&f.KubeAPIBurst, "kube-api-burst", f.KubeAPIBurst, "Requests allowed at once above --kube-api-qps; 0: twice --kube-api-qps.")
	fs.BoolVar(&o.DenyUnlessAllowed, "deny-unless-allowed", o.DenyUnlessAllowed, "Deny every OAuthClient and User no TokenPolicy allows, even while no TokenPolicy exists.")
	fs.StringVar(&o.PolicySnapshotName, "policy-snapshot", o.PolicySnapshotName, "Name of the TokenPolicySnapshot the admission policy reads (the chart's fullname). Default: tokensmith.")
	f.zap.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.ServerNamespace == "" {
		return nil, errors.New("--server-namespace is required (or set $POD_NAMESPACE)")
	}
	m.LeaderElectionNamespace = o.ServerNamespace
	if o.TokenURL == "" {
		o.TokenURL = "http://tokensmith." + o.ServerNamespace + ".svc/oauth/token"
	}
	if o.KeyRotationPeriod <= 0 || o.KeyRetention <= 0 {
		return nil, errors.New("--key-rotation-period and --key-retention must be positive")
	}
	if o.PropagationAllowance < 0 {
		return nil, errors.New("--propagation-allowance must not be negative")
	}
	if m.ConcurrentReconciles < 1 {
		return nil, errors.New("--concurrent-reconciles must be at least 1")
	}
	if f.KubeAPIQPS == 0 || f.KubeAPIBurst < 0 {
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
	mgr, err := f.NewManager(cfg)
	if err != nil {
		log.Error(err, "creating the manager")
		return 1
	}
	log.Info("starting", "serverNamespace", f.Options.ServerNamespace, "tokenURL", f.Options.TokenURL, "leaderElection", f.Manager.LeaderElection,
		"concurrentReconciles", f.Manager.ConcurrentReconciles, "kubeAPIQPS", f.KubeAPIQPS, "kubeAPIBurst", f.KubeAPIBurst)
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
