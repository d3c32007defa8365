package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/cmd"
	"github.com/tokensmith/tokensmith/controllers"
	"github.com/tokensmith/tokensmith/internal/testenv"
)

// localFlags are the flags of "tokensmith-local".
type localFlags struct {
	listen      string
	adminListen string
	dir         string
	samples     string
	namespace   string
	zap         zap.Options
}

// runLocal starts a throwaway control plane (kube-apiserver and etcd built by
// hack/), installs the CRDs, runs the controller and the token server in this
// process, applies the samples, prints how to use them, and runs until
// interrupted. Everything it starts is stopped and removed on exit, except the
// kubeconfig, which is rewritten on the next run.
func runLocal(args []string, stdout, stderr io.Writer) int {
	f := localFlags{}
	fs := flag.NewFlagSet("tokensmith-local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.listen, "listen", "127.0.0.1:4000", "Address of the token server.")
	fs.StringVar(&f.adminListen, "admin-listen", "127.0.0.1:9090", "Address of /metrics, /healthz and /readyz.")
	fs.StringVar(&f.dir, "dir", "bin/local", "Directory for the kubeconfig of the local control plane.")
	fs.StringVar(&f.samples, "samples", "config/samples", `Directory of manifests to apply once running; "" applies none.`)
	fs.StringVar(&f.namespace, "namespace", "tokensmith-system", "Namespace of the token server (verifiers and signing keys).")
	f.zap.Development = true
	f.zap.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&f.zap), zap.WriteTo(stderr)))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runLocalPlane(ctx, f, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "tokensmith-local: %v\n", err)
		return 1
	}
	return 0
}

func runLocalPlane(ctx context.Context, f localFlags, stdout, stderr io.Writer) error {
	fmt.Fprintln(stderr, "starting kube-apiserver and etcd ...")
	env, cfg, err := testenv.Start()
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(stderr, "stopping the local control plane ...")
		if err := env.Stop(); err != nil {
			fmt.Fprintf(stderr, "stopping the control plane: %v\n", err)
		}
	}()

	kubeconfig, err := testenv.WriteAdminKubeconfig(env, "local-admin", f.dir)
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		return err
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.namespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", f.namespace, err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	if err := startLocalController(ctx, cfg, f, errs); err != nil {
		return err
	}
	if err := startLocalServer(ctx, cfg, f, errs); err != nil {
		return err
	}

	applied, err := applyManifests(ctx, c, f.samples)
	if err != nil {
		return err
	}
	if err := waitLocalReady(ctx, c, f, applied, errs); err != nil {
		return err
	}
	printLocalSummary(ctx, c, stdout, f, kubeconfig, applied)

	select {
	case <-ctx.Done():
		return nil
	case err := <-errs:
		return err
	}
}

// startLocalController runs "tokensmith controller"'s wiring with its
// defaults, serving no metrics or probes (the token server's admin address is
// the one to watch locally).
func startLocalController(ctx context.Context, cfg *rest.Config, f localFlags, errs chan<- error) error {
	c := cmd.DefaultController(f.namespace, "http://"+f.listen+"/oauth/token")
	c.Manager.MetricsBindAddress, c.Manager.HealthProbeBindAddress = controllers.BindOff, controllers.BindOff
	mgr, err := c.NewManager(cfg)
	if err != nil {
		return err
	}
	go func() {
		if err := mgr.Start(ctx); err != nil {
			errs <- fmt.Errorf("controller: %w", err)
		}
	}()
	return nil
}

// appliedObject is a manifest the local mode applied.
type appliedObject struct {
	Kind, Namespace, Name string
}

// applyManifests server-side applies every YAML document under dir.
func applyManifests(ctx context.Context, c client.Client, dir string) ([]appliedObject, error) {
	if dir == "" {
		return nil, nil
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var applied []appliedObject
	for _, file := range files {
		if filepath.Base(file) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for {
			doc, err := reader.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			obj := &unstructured.Unstructured{}
			if err := utilyaml.Unmarshal(doc, &obj.Object); err != nil || len(obj.Object) == 0 {
				continue
			}
			if obj.GetNamespace() == "" {
				obj.SetNamespace("default")
			}
			if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner("tokensmith-local"), client.ForceOwnership); err != nil {
				return nil, fmt.Errorf("applying %s %s from %s: %w", obj.GetKind(), obj.GetName(), file, err)
			}
			applied = append(applied, appliedObject{Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName()})
		}
	}
	return applied, nil
}

// waitLocalReady waits until every applied OAuthClient and User is Ready and
// the token server answers /readyz.
func waitLocalReady(ctx context.Context, c client.Client, f localFlags, applied []appliedObject, errs <-chan error) error {
	deadline := time.Now().Add(90 * time.Second)
	for {
		pending := pendingObjects(ctx, c, applied)
		if len(pending) == 0 && serverReady(f.adminListen) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after 90s: %s", strings.Join(pending, ", "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errs:
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func pendingObjects(ctx context.Context, c client.Client, applied []appliedObject) []string {
	var pending []string
	for _, a := range applied {
		var conds []metav1.Condition
		key := client.ObjectKey{Namespace: a.Namespace, Name: a.Name}
		switch a.Kind {
		case "OAuthClient":
			var oc authv1alpha1.OAuthClient
			if err := c.Get(ctx, key, &oc); err == nil {
				conds = oc.Status.Conditions
			}
		case "User":
			var u authv1alpha1.User
			if err := c.Get(ctx, key, &u); err == nil {
				conds = u.Status.Conditions
			}
		default:
			continue
		}
		if !meta.IsStatusConditionTrue(conds, authv1alpha1.ConditionReady) {
			pending = append(pending, a.Kind+" "+a.Namespace+"/"+a.Name)
		}
	}
	return pending
}

func serverReady(adminAddr string) bool {
	cl := http.Client{Timeout: time.Second}
	resp, err := cl.Get("http://" + adminAddr + "/readyz")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
