package controllers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
)

// The controller reads and writes Secrets in every namespace (consumer Secrets
// live next to their OAuthClient or User), and writes verifiers, signing keys
// and the revocations Secret into the server namespace.
//
// Leader election additionally needs leases in the manager's namespace; that
// namespaced Role lives with the deployment manifests, not here.
//
// Finalizers and status are written with merge patches; "update" on
// finalizers is what OwnerReferencesPermissionEnforcement asks of whoever sets
// blockOwnerDeletion on a consumer Secret.
//
// +kubebuilder:rbac:groups=auth.tokensmith.io,resources=oauthclients;users,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=auth.tokensmith.io,resources=oauthclients/status;users/status,verbs=patch
// +kubebuilder:rbac:groups=auth.tokensmith.io,resources=oauthclients/finalizers;users/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Options configure the reconcilers.
type Options struct {
	// ServerNamespace is where the token server runs: verifiers, signing keys
	// and revocations are written there. Required.
	ServerNamespace string
	// TokenURL is written into every consumer Secret as TOKEN_URL.
	TokenURL string
	// KeyRotationPeriod is how long a signing key is current before it is replaced.
	KeyRotationPeriod time.Duration
	// KeyRetention is how long a replaced signing key still verifies; at least
	// the longest token lifetime (8784h), or tokens would stop verifying early.
	KeyRetention time.Duration
	// Now is the clock; nil means time.Now. Tests inject one to cross expiries.
	Now func() time.Time
	// DenyUnlessAllowed denies every OAuthClient and User no TokenPolicy
	// allows, even while no TokenPolicy exists (the chart's tenancy.denyUnlessAllowed).
	DenyUnlessAllowed bool
	// PolicySnapshotName names the TokenPolicySnapshot the admission policy
	// reads; "" means tenancy.DefaultSnapshotName.
	PolicySnapshotName string
	// PropagationAllowance is how long after a verifier changes the object
	// stays Ready=False, reason Propagating, before it is Ready: the time the
	// token server replicas' watches get to serve the change (milliseconds
	// when healthy; each replica measures it as
	// tokensmith_credential_propagation_seconds). 0 says Ready as soon as the
	// verifier is stored, which only a single in-process server can rely on.
	// The controller's flag defaults to DefaultPropagationAllowance.
	PropagationAllowance time.Duration
}

// Defaults of Options and of the controller's flags.
const (
	DefaultKeyRotationPeriod = 720 * time.Hour
	DefaultKeyRetention      = 8800 * time.Hour
	// DefaultPropagationAllowance is a hundred times a healthy watch's delay
	// plus the server index's CoalesceWindow, and short enough that a script
	// waiting for Ready barely notices it.
	DefaultPropagationAllowance = time.Second
)

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now().UTC()
	}
	return time.Now().UTC()
}

// propagating is how much longer an object whose verifier data changed at
// writtenAt must wait before it is Ready; 0 or less means it may be Ready now.
func (o Options) propagating(writtenAt, now time.Time) time.Duration {
	return writtenAt.Add(o.PropagationAllowance).Sub(now)
}

func (o Options) validate() error {
	if o.ServerNamespace == "" {
		return errors.New("controllers: Options.ServerNamespace is required")
	}
	if o.KeyRotationPeriod < 0 || o.KeyRetention < 0 || o.PropagationAllowance < 0 {
		return errors.New("controllers: key rotation period, retention and propagation allowance must not be negative")
	}
	return nil
}

// ManagerOptions configure NewManager.
type ManagerOptions struct {
	// Scheme defaults to the built-in kinds plus tokensmith's.
	Scheme *runtime.Scheme
	// MetricsBindAddress serves Prometheus /metrics; "" means
	// DefaultMetricsBindAddress, BindOff disables it.
	MetricsBindAddress string
	// HealthProbeBindAddress serves /healthz and /readyz; "" means
	// DefaultHealthProbeBindAddress, BindOff disables it.
	HealthProbeBindAddress string
	// LeaderElection makes only one replica reconcile at a time.
	LeaderElection bool
	// LeaderElectionID names the Lease (default DefaultLeaderElectionID);
	// LeaderElectionNamespace is where it lives (defaults to the in-cluster
	// namespace).
	LeaderElectionID        string
	LeaderElectionNamespace string
	// LeaseDuration, RenewDeadline and RetryPeriod tune leader election; zero
	// keeps controller-runtime's defaults (15s, 10s, 2s). A follower takes over
	// at most LeaseDuration after a leader dies without releasing the Lease.
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	// SkipControllerNameValidation allows more than one manager per process
	// (tests, and "tokensmith-local" restarting its controller).
	SkipControllerNameValidation bool
	// ConcurrentReconciles is how many OAuthClients (and, separately, Users)
	// are reconciled at once; 0 means DefaultConcurrentReconciles. One object
	// is never reconciled twice at once, and the signing-keys controller
	// always runs one worker.
	ConcurrentReconciles int
}

// Defaults of ManagerOptions: what its zero fields mean, and what "tokensmith
// controller" binds as its flags' defaults (the chart's ports and Lease).
const (
	DefaultMetricsBindAddress     = ":8080"
	DefaultHealthProbeBindAddress = ":8081"
	DefaultLeaderElectionID       = "tokensmith-controller"
)

// BindOff as a ManagerOptions bind address serves nothing there (tests and
// tokensmith-local, which run several managers in one process); it is
// controller-runtime's spelling, and the flags'.
const BindOff = "0"

// Defaults of the controller's concurrency and of its client-side rate limit
// towards the API server ("tokensmith controller --concurrent-reconciles,
// --kube-api-qps, --kube-api-burst").
//
// A new OAuthClient costs about 8 API requests (one creates the claim record
// of its client id, another each numericID's). With a client-side limit of
// 50/s and a burst of 100 (what many controllers set) the bench measured 200
// new OAuthClients in 10.1 s, about 50 s for 1,000 (docs/performance.md).
// Like controller-runtime's
// own default, tokensmith sets no client-side limit and leaves fairness to the
// API server's Priority and Fairness; a negative QPS means exactly that, and
// a burst of 0 means twice the QPS.
const (
	DefaultConcurrentReconciles = 8
	DefaultKubeAPIQPS           = -1
	DefaultKubeAPIBurst         = 0
)

// RateLimit sets cfg's client-side rate limit from the flags' meaning of qps
// and burst (see DefaultKubeAPIQPS) and returns cfg.
func RateLimit(cfg *rest.Config, qps float64, burst int) *rest.Config {
	cfg.QPS, cfg.Burst = float32(qps), burst
	if qps < 0 {
		cfg.QPS, cfg.Burst = -1, 0
	} else if burst <= 0 {
		cfg.Burst = max(1, int(2*qps))
	}
	return cfg
}

// NewManager builds a manager with the production cache settings: Secrets are
// cached only when they carry app.kubernetes.io/managed-by=tokensmith, and no
// object keeps its managedFields in memory. Secrets that tokensmith does not
// label (a pre-existing or user-provided one) are read with the API reader.
//
// cfg should leave ContentType empty: controller-runtime then speaks protobuf
// for built-in kinds (Secrets, Events: most requests) and JSON for
// tokensmith's own, which have no protobuf encoding; a ContentType set here
// would apply to every kind and break writes of the custom ones
// (TestBuiltInKindsGoAsProtobufAndCustomOnesAsJSON).
func NewManager(cfg *rest.Config, o ManagerOptions) (ctrl.Manager, error) {
	scheme := o.Scheme
	if scheme == nil {
		scheme = Scheme()
	}
	strip := cache.TransformStripManagedFields()
	mopts := ctrl.Options{
		Scheme: scheme,
		Cache: cache.Options{
			DefaultTransform: strip,
			ByObject: map[client.Object]cache.ByObject{
				&corev1.Secret{}: {
					Label:     managedSelector(),
					Transform: strip,
				},
			},
		},
		Metrics:                 metricsserver.Options{BindAddress: cmp.Or(o.MetricsBindAddress, DefaultMetricsBindAddress)},
		HealthProbeBindAddress:  cmp.Or(o.HealthProbeBindAddress, DefaultHealthProbeBindAddress),
		LeaderElection:          o.LeaderElection,
		LeaderElectionID:        cmp.Or(o.LeaderElectionID, DefaultLeaderElectionID),
		LeaderElectionNamespace: o.LeaderElectionNamespace,
		// "tokensmith controller" exits as soon as the manager stops, so the
		// Lease can be handed over at once instead of after it expires.
		LeaderElectionReleaseOnCancel: true,
	}
	if o.LeaseDuration > 0 {
		mopts.LeaseDuration = &o.LeaseDuration
	}
	if o.RenewDeadline > 0 {
		mopts.RenewDeadline = &o.RenewDeadline
	}
	if o.RetryPeriod > 0 {
		mopts.RetryPeriod = &o.RetryPeriod
	}
	mopts.Controller.MaxConcurrentReconciles = o.ConcurrentReconciles
	if o.ConcurrentReconciles <= 0 {
		mopts.Controller.MaxConcurrentReconciles = DefaultConcurrentReconciles
	}
	if o.SkipControllerNameValidation {
		skip := true
		mopts.Controller.SkipNameValidation = &skip
	}
	// controller-runtime spells a disabled probe endpoint "".
	if mopts.HealthProbeBindAddress == BindOff {
		mopts.HealthProbeBindAddress = ""
	}
	mgr, err := ctrl.NewManager(cfg, mopts)
	if err != nil {
		return nil, fmt.Errorf("controllers: creating the manager: %w", err)
	}
	if mopts.HealthProbeBindAddress != "" {
		if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
			return nil, err
		}
		// Ready once the informers have synced: before that, a reconcile
		// could not see the Secrets it is about to compare against.
		if err := mgr.AddReadyzCheck("readyz", cacheSynced(mgr.GetCache())); err != nil {
			return nil, err
		}
	}
	return mgr, nil
}

// Scheme knows the built-in kinds and tokensmith's.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(authv1alpha1.AddToScheme(s))
	return s
}

func cacheSynced(c cache.Cache) healthz.Checker {
	return func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !c.WaitForCacheSync(ctx) {
			return errors.New("informer caches have not synced")
		}
		return nil
	}
}

func managedSelector() labels.Selector {
	return labels.SelectorFromSet(labels.Set{authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue})
}

// Setup registers the OAuthClient, User and signing-keys reconcilers with mgr.
func Setup(mgr ctrl.Manager, opts Options) error {
	if err := opts.validate(); err != nil {
		return err
	}
	if opts.KeyRotationPeriod == 0 {
		opts.KeyRotationPeriod = DefaultKeyRotationPeriod
	}
	if opts.KeyRetention == 0 {
		opts.KeyRetention = DefaultKeyRetention
	}
	if err := setupIndexes(mgr); err != nil {
		return err
	}
	watch, err := newSecretMetadataWatch(mgr)
	if err != nil {
		return err
	}
	recorder := mgr.GetEventRecorder("tokensmith-controller")
	base := credentialReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(),
		Recorder: recorder, Options: opts,
	}
	oc := &oauthClientReconciler{base}
	if err := oc.SetupWithManager(mgr, watch); err != nil {
		return fmt.Errorf("controllers: setting up the OAuthClient controller: %w", err)
	}
	u := &userReconciler{credentialReconciler: base}
	if err := u.SetupWithManager(mgr, watch); err != nil {
		return fmt.Errorf("controllers: setting up the User controller: %w", err)
	}
	ps := &PolicySnapshotReconciler{Client: mgr.GetClient(), Options: opts}
	if err := ps.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("controllers: setting up the TokenPolicySnapshot controller: %w", err)
	}
	sk := &signingKeysReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Options: opts}
	if err := sk.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("controllers: setting up the signing-keys controller: %w", err)
	}
	return nil
}
