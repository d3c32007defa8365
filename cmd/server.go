package cmd

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/tokensmith/tokensmith/internal/memlimit"
	"github.com/tokensmith/tokensmith/server"
	"github.com/tokensmith/tokensmith/server/devicelogin"
	"github.com/tokensmith/tokensmith/server/login"
	"github.com/tokensmith/tokensmith/server/saauth"
	"github.com/tokensmith/tokensmith/server/session"
)

// serverFlags are the flags of "tokensmith server".
type serverFlags struct {
	kubeconfig        string
	namespace         string
	listen            string
	adminListen       string
	issuer            string
	saAudience        string
	saVerdictMaxAge   time.Duration
	devMode           bool
	deviceLoginClient string
	deviceTokenTTL    time.Duration
	sessionAlg        string
	trustedProxies    string
	rateLimits        server.RateLimits
	lockout           lockoutFlags
	shutdownDrain     time.Duration
	shutdownTimeout   time.Duration
	tlsSecret         string
	tlsWait           time.Duration
	zap               zap.Options
}

func parseServerFlags(args []string, stderr io.Writer) (*serverFlags, *server.RunOptions, error) {
	f := &serverFlags{}
	fs := flag.NewFlagSet("tokensmith server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "Path to a kubeconfig. Default: $KUBECONFIG, the in-cluster config, then ~/.kube/config.")
	fs.StringVar(&f.namespace, "namespace", os.Getenv("POD_NAMESPACE"), "The server's own namespace, the only one whose Secrets it reads. Default: $POD_NAMESPACE.")
	fs.StringVar(&f.listen, "listen", server.DefaultListen, "Address of the token APIs.")
	fs.StringVar(&f.adminListen, "admin-listen", server.DefaultAdminListen, "Address of /healthz, /readyz and /metrics.")
	fs.StringVar(&f.issuer, "issuer", "", `"iss" of every token. Default: https://tokensmith.<namespace>.svc with --tls-secret, else http://tokensmith.<namespace>.svc.`)
	fs.StringVar(&f.tlsSecret, "tls-secret", "", "Name of the kubernetes.io/tls Secret in --namespace whose certificate the token APIs serve (HTTPS, reloaded when the Secret changes). Empty: plain HTTP. --admin-listen stays plain.")
	fs.DurationVar(&f.tlsWait, "tls-wait", server.DefaultTLSWait, "How long to wait at start for --tls-secret to hold a usable certificate before exiting with what is wrong.")
	fs.StringVar(&f.saAudience, "service-account-token-audience", "", `The "aud" a ServiceAccount token must carry to authenticate a client (OAuthClient.spec.serviceAccountName). Default: the issuer.`)
	fs.DurationVar(&f.saVerdictMaxAge, "service-account-verdict-max-age", saauth.DefaultMaxAge, "How long the API server's verdict on a ServiceAccount token is used (refreshed in the background from half of it); at most 50s, so that a deleted ServiceAccount or pod is refused within 60s.")
	fs.BoolVar(&f.devMode, "dev-mode", false, "Development mode: device login answers debug=1 with whether a username exists. Never in production.")
	fs.StringVar(&f.deviceLoginClient, "device-login-client", "", "Client id of the OAuthClient (with the password grant) whose tokens POST /v1/oauth/ logins receive.")
	fs.DurationVar(&f.deviceTokenTTL, "device-token-ttl", devicelogin.DefaultTTL, "Lifetime of device login tokens.")
	fs.StringVar(&f.sessionAlg, "session-alg", string(session.HS512), "Signature of session API tokens: HS512 or ES256.")
	fs.StringVar(&f.trustedProxies, "trusted-proxies", "", "Comma-separated CIDRs of proxies whose X-Forwarded-For is believed for per-IP throttling.")
	f.rateLimits = server.DefaultRateLimits()
	fs.Float64Var(&f.rateLimits.PerIP, "rate-limit-per-ip", f.rateLimits.PerIP, "Requests per second per client address (IPv6: per /64) on the token, password, introspect and revoke endpoints; 0 disables. See --trusted-proxies.")
	fs.IntVar(&f.rateLimits.PerIPBurst, "rate-limit-per-ip-burst", f.rateLimits.PerIPBurst, "Requests one client address may send at once before --rate-limit-per-ip applies.")
	fs.Float64Var(&f.rateLimits.PerClient, "rate-limit-per-client", f.rateLimits.PerClient, "Requests per second per presented client id on the token endpoints, checked before the secret; 0 disables.")
	fs.IntVar(&f.rateLimits.PerClientBurst, "rate-limit-per-client-burst", f.rateLimits.PerClientBurst, "Requests one client id may send at once before --rate-limit-per-client applies.")
	fs.DurationVar(&f.shutdownDrain, "shutdown-drain", 0, "After SIGTERM, keep serving this long with /readyz failing and every answer closing its connection, so pooled client connections move to other replicas; then stop accepting connections.")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", server.DefaultShutdownTimeout, "After --shutdown-drain, how long in-flight requests get to finish before the server exits.")
	f.lockout.bind(fs)
	f.zap.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if f.namespace == "" {
		return nil, nil, errors.New("--namespace is required (or set $POD_NAMESPACE)")
	}
	if f.issuer == "" {
		scheme := "http"
		if f.tlsSecret != "" {
			scheme = "https"
		}
		f.issuer = scheme + "://tokensmith." + f.namespace + ".svc"
	}
	if f.tlsWait <= 0 {
		return nil, nil, errors.New("--tls-wait must be positive")
	}
	if f.saAudience == "" {
		f.saAudience = f.issuer
	}
	// kube-apiserver caches a successful authentication for 10s more.
	if f.saVerdictMaxAge < time.Second || f.saVerdictMaxAge > 50*time.Second {
		return nil, nil, errors.New("--service-account-verdict-max-age must be between 1s and 50s")
	}
	if f.deviceTokenTTL <= 0 {
		return nil, nil, errors.New("--device-token-ttl must be positive")
	}
	alg, err := session.ParseAlg(f.sessionAlg)
	if err != nil {
		return nil, nil, fmt.Errorf("--session-alg: %w", err)
	}
	if f.rateLimits.PerIP < 0 || f.rateLimits.PerClient < 0 || f.rateLimits.PerIPBurst < 1 || f.rateLimits.PerClientBurst < 1 {
		return nil, nil, errors.New("--rate-limit-* rates must be >= 0 and bursts >= 1")
	}
	// The flags spell "off" as 0, server.RateLimits as RateLimitOff (its zero
	// means the default).
	for _, r := range []*float64{&f.rateLimits.PerIP, &f.rateLimits.PerClient} {
		if *r == 0 {
			*r = server.RateLimitOff
		}
	}
	if f.shutdownDrain < 0 || f.shutdownTimeout <= 0 {
		return nil, nil, errors.New("--shutdown-drain must be >= 0 and --shutdown-timeout positive")
	}
	lockoutPolicy, err := f.lockout.policy()
	if err != nil {
		return nil, nil, err
	}
	proxies, err := server.ParseTrustedProxies(f.trustedProxies)
	if err != nil {
		return nil, nil, fmt.Errorf("--trusted-proxies: %w", err)
	}
	return f, &server.RunOptions{
		Options: server.Options{
			Issuer:            f.issuer,
			DevMode:           f.devMode,
			DeviceLoginClient: f.deviceLoginClient,
			DeviceTokenTTL:    f.deviceTokenTTL,
			SessionAlg:        alg,
			TrustedProxies:    proxies,
			RateLimits:        f.rateLimits,
		},
		Namespace:       f.namespace,
		Listen:          f.listen,
		AdminListen:     f.adminListen,
		DrainDelay:      f.shutdownDrain,
		ShutdownTimeout: f.shutdownTimeout,
		Lockout:         lockoutPolicy,

		ServiceAccountAudience:      f.saAudience,
		ServiceAccountVerdictMaxAge: f.saVerdictMaxAge,
		TLSSecret:                   f.tlsSecret,
		TLSWait:                     f.tlsWait,
	}, nil
}

// runServer is "tokensmith server": it serves the token APIs from the Secrets
// the controller writes into its namespace until SIGINT or SIGTERM.
func runServer(args []string, _, stderr io.Writer) int {
	f, o, err := parseServerFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "tokensmith server: %v\n", err)
		return 2
	}
	f.zap.DestWriter = stderr
	logger := zap.New(zap.UseFlagOptions(&f.zap))
	ctrl.SetLogger(logger)
	o.Logger = logger.WithName("server")
	limit, source := memlimit.Apply()
	o.Logger.Info("memory", "softLimitBytes", limit, "source", source, "passwordSlots", login.DefaultSlots(limit))

	cfg, err := restConfig(f.kubeconfig)
	if err != nil {
		o.Logger.Error(err, "loading the Kubernetes client configuration")
		return 1
	}
	if err := server.Run(ctrl.SetupSignalHandler(), cfg, *o); err != nil {
		o.Logger.Error(err, "token server stopped")
		return 1
	}
	return 0
}
