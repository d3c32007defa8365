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
	"github.com/tokensmith/tokensmith/server/tlscert"
	"github.com/tokensmith/tokensmith/server/userstatus"
)

// Defaults of RunOptions, which "tokensmith server" binds as its flags'
// defaults (the chart's ports).
const (
	DefaultListen          = ":4000"
	DefaultAdminListen     = ":9090"
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultTLSWait is how long Run waits at start for a usable certificate:
	// long enough for the controller to issue the first one on a new install.
	DefaultTLSWait = 2 * time.Minute
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
	// TLSSecret names the kubernetes.io/tls Secret in Namespace whose
	// certificate Listen serves (server/tlscert), reloaded when it changes;
	// empty serves plain HTTP. AdminListen stays plain either way.
	TLSSecret string
	// TLSWait bounds how long Run waits at start for TLSSecret to hold a
	// usable certificate before it fails, naming what is wrong; 0 means
	// DefaultTLSWait.
	TLSWait time.Duration
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

	o.Certificate = watchCertificate(ctx, o, clientset)

	s, err := New(o.Options)
	if err != nil {
		return err
	}
	api, admin, err := listen(o)
	if err != nil {
		return err
	}
	servers := []*http.Server{
		{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10},
		{Handler: s.AdminHandler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second},
	}
	errs, err := startServing(ctx, o, servers, api, admin)
	if err != nil {
		return err
	}
	o.Logger.Info("serving", "listen", api.Addr().String(), "tls", o.Certificate != nil, "adminListen", admin.Addr().String(),
		"namespace", o.Namespace, "issuer", o.Issuer)

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

// listen opens o.Listen and o.AdminListen.
func listen(o RunOptions) (api, admin net.Listener, err error) {
	if api, err = net.Listen("tcp", o.Listen); err != nil {
		return nil, nil, fmt.Errorf("server: listening on %s: %w", o.Listen, err)
	}
	if admin, err = net.Listen("tcp", o.AdminListen); err != nil {
		_ = api.Close()
		return nil, nil, fmt.Errorf("server: listening on %s: %w", o.AdminListen, err)
	}
	return api, admin, nil
}

// startServing serves servers[1] (admin) on admin and servers[0] (the
// token APIs) on api, over TLS when o.Certificate is set; the channel gets
// each server's end. The admin port starts first: /healthz answers and
// /readyz says what is missing while the token port waits for its
// certificate.
func startServing(ctx context.Context, o RunOptions, servers []*http.Server, api, admin net.Listener) (chan error, error) {
	errs := make(chan error, 2)
	go func() { errs <- servers[1].Serve(admin) }()
	if o.Certificate == nil {
		go func() { errs <- servers[0].Serve(api) }()
		return errs, nil
	}
	if err := awaitCertificate(ctx, o); err != nil {
		_ = api.Close()
		_ = servers[1].Close()
		return nil, err
	}
	// ServeTLS with GetCertificate set reads no files and enables HTTP/2. A
	// plaintext request gets net/http's 400 ("Client sent an HTTP request to
	// an HTTPS server"), not a hang.
	servers[0].TLSConfig = o.Certificate.Config()
	go func() { errs <- servers[0].ServeTLS(api, "", "") }()
	return errs, nil
}

// watchCertificate feeds a tlscert.Source from o.TLSSecret until ctx ends:
// the token port's certificate. It is o.Certificate when that is set (tests)
// and nil (plain HTTP) when o.TLSSecret is empty.
func watchCertificate(ctx context.Context, o RunOptions, clientset kubernetes.Interface) *tlscert.Source {
	if o.Certificate != nil || o.TLSSecret == "" {
		return o.Certificate
	}
	src := tlscert.New(o.Namespace+"/"+o.TLSSecret, o.Now)
	log := o.Logger.WithName("tls")
	go func() {
		if err := tlscert.Watch(ctx, src, clientset, o.Namespace, o.TLSSecret, log); err != nil && ctx.Err() == nil {
			log.Error(err, "TLS certificate watch stopped")
		}
	}()
	return src
}

// awaitCertificate waits, at most o.TLSWait, for o.Certificate to hold a
// certificate that can serve: the token port never opens without one, and a
// missing or unusable Secret is an error that says why.
func awaitCertificate(ctx context.Context, o RunOptions) error {
	wait := o.TLSWait
	if wait <= 0 {
		wait = DefaultTLSWait
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-o.Certificate.Loaded():
		return nil
	case <-timer.C:
		return fmt.Errorf("server: no usable TLS certificate after %s: %w", wait, o.Certificate.Problem())
	case <-ctx.Done():
		return ctx.Err()
	}
}
