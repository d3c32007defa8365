package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tokensmith/tokensmith/server/index"
	"github.com/tokensmith/tokensmith/server/index/watch"
	"github.com/tokensmith/tokensmith/server/lockout"
	"github.com/tokensmith/tokensmith/server/revocations"
	"github.com/tokensmith/tokensmith/server/saauth"
	"github.com/tokensmith/tokensmith/server/saauth/tokenreview"
	"github.com/tokensmith/tokensmith/server/userstatus"
)

// Defaults of RunOptions, which "tokensmith server" binds as its flags'
// defaults (the chart's ports).
const (
	DefaultListen          = ":4000"
	DefaultAdminListen     = ":9090"
	DefaultShutdownTimeout = 10 * time.Second
)

// RunOptions configure Run. Options.Index, Options.Revoker,
// Options.DeviceRecorder and Options.Login.Lockout are filled in by Run when nil.
type RunOptions struct {
	Options
	// Namespace is the token server's own namespace: the only one whose
	// Secrets it reads.
	Namespace string
	// Listen serves the token APIs; AdminListen serves /healthz, /readyz and
	// /metrics. "tokensmith server" defaults them to DefaultListen and
	// DefaultAdminListen.
	Listen, AdminListen string
	// DrainDelay is how long the server keeps serving after ctx ends (SIGTERM)
	// before it stops accepting connections: /readyz fails at once and every
	// answer says "Connection: close", so pooled client connections move to
	// other replicas. 0: shut down at once.
	DrainDelay time.Duration
	// ShutdownTimeout bounds the graceful shutdown (http.Server.Shutdown, after
	// DrainDelay): in-flight requests get this long to finish; 0 means
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Lockout is the per-user lockout policy; the zero value is the default
	// policy, a negative Threshold turns the lockout off.
	Lockout lockout.Policy
	// ServiceAccountAudience is the audience a ServiceAccount token must carry
	// to authenticate a client; default the Issuer. Used when Assertions is nil.
	ServiceAccountAudience string
	// ServiceAccountVerdictMaxAge bounds how long the API server's verdict on
	// a ServiceAccount token is used; default saauth.DefaultMaxAge.
	ServiceAccountVerdictMaxAge time.Duration
}

// Run serves the token server against the cluster behind cfg until ctx ends,
// then shuts down gracefully. It is what "tokensmith server" and
// "tokensmith-local" run.
func Run(ctx context.Context, cfg *rest.Config, o RunOptions) error {
	if o.Namespace == "" {
		return errors.New("server: a namespace is required")
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The clientset reads and writes built-in types only (Secrets,
	// TokenReviews): protobuf. The dynamic client (User status) keeps cfg.
	clientset, err := kubernetes.NewForConfig(watch.ClientConfig(cfg))
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if o.Index == nil && o.Snapshot == nil {
		o.Index = index.New(o.Logger.WithName("index"))
		go func() {
			if err := watch.Run(ctx, o.Index, clientset, o.Namespace); err != nil && ctx.Err() == nil {
				o.Logger.Error(err, "credential index stopped")
			}
		}()
	}
	if o.Assertions == nil {
		if o.Assertions, err = assertionVerifier(o, clientset); err != nil {
			return err
		}
	}
	if o.Revoker == nil {
		o.Revoker = &revocations.SecretRevoker{Client: clientset, Namespace: o.Namespace, Index: o.Index, Now: o.Now, Logger: o.Logger.WithName("revoker")}
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	var recorder *userstatus.Devices
	if o.DeviceRecorder == nil {
		recorder = &userstatus.Devices{Client: dyn, Logger: o.Logger.WithName("devices")}
		o.DeviceRecorder = recorder
		go recorder.Run(ctx)
	}
	var locks *lockout.Lockout
	if o.Login.Lockout == nil && o.Lockout.Enabled() {
		locks = lockout.New(o.Lockout, userstatus.Lockouts{Client: dyn}, o.Logger.WithName("lockout"))
		o.Login.Lockout = locks
		if o.Snapshot != nil {
			locks.WatchIndex(o.Snapshot)
		} else {
			locks.WatchIndex(o.Index.Snapshot)
		}
		go locks.Run(ctx)
	}

	s, err := New(o.Options)
	if err != nil {
		return err
	}
	api, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("server: listening on %s: %w", o.Listen, err)
	}
	admin, err := net.Listen("tcp", o.AdminListen)
	if err != nil {
		_ = api.Close()
		return fmt.Errorf("server: listening on %s: %w", o.AdminListen, err)
	}
	servers := []*http.Server{
		{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10},
		{Handler: s.AdminHandler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second},
	}
	errs := make(chan error, 2)
	for i, l := range []net.Listener{api, admin} {
		go func() { errs <- servers[i].Serve(l) }()
	}
	o.Logger.Info("serving", "listen", api.Addr().String(), "adminListen", admin.Addr().String(), "namespace", o.Namespace, "issuer", o.Issuer)

	var serveErr error
	select {
	case <-ctx.Done():
		s.Drain()
		if o.DrainDelay > 0 {
			o.Logger.Info("draining: not ready, closing client connections after their next answer", "for", o.DrainDelay.String())
			select {
			case <-time.After(o.DrainDelay):
			case serveErr = <-errs:
			}
		}
	case serveErr = <-errs:
	}
	shutdownCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), o.ShutdownTimeout)
	defer stop()
	for _, srv := range servers {
		_ = srv.Shutdown(shutdownCtx)
	}
	if recorder != nil {
		recorder.Flush(shutdownCtx)
	}
	if locks != nil {
		locks.Flush(shutdownCtx)
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("server: %w", serveErr)
	}
	o.Logger.Info("stopped")
	return nil
}

// assertionVerifier verifies ServiceAccount tokens with TokenReviews, for the
// audience o names (the issuer by default).
func assertionVerifier(o RunOptions, clientset kubernetes.Interface) (*saauth.Verifier, error) {
	audience := o.ServiceAccountAudience
	if audience == "" {
		audience = o.Issuer
	}
	if audience == "" {
		return nil, errors.New("server: an issuer is required")
	}
	return saauth.NewVerifier(saauth.Config{
		Audience: audience, Reviewer: tokenreview.New(clientset.AuthenticationV1()),
		MaxAge: o.ServiceAccountVerdictMaxAge, Now: o.Now,
	}), nil
}
