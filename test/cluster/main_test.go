// Package cluster installs the chart, as a user would, on a real one-node
// cluster (test/cluster/node): kubelet, containerd and runc run the image that
// "make image" builds, under the restricted Pod Security profile. Run it alone
// with "make test-cluster".
package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/tokensmith/tokensmith/internal/ociimage"
	"github.com/tokensmith/tokensmith/internal/testenv"
	"github.com/tokensmith/tokensmith/test/cluster/node"
)

// imageRef is the image the chart's values point at; the tarball carries the
// same name, so kubelet finds it in containerd without pulling.
const (
	imageRepository = "tokensmith"
	imageTag        = "cluster-test"
)

// the cluster every test of this package runs against.
var cluster *node.Cluster

// repoRoot is the checkout the chart, samples and binary come from.
var repoRoot string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// The tests' controller-runtime clients log nothing worth reading; without
	// a logger controller-runtime prints a stack trace on first use.
	ctrllog.SetLogger(logr.Discard())
	var err error
	if repoRoot, err = testenv.RepoRoot(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	work, err := os.MkdirTemp("", "tokensmith-node-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	images := filepath.Join(work, "images")
	cfg := node.Config{
		Name:       "tokensmith-node-" + filepath.Base(work)[len("tokensmith-node-"):],
		Dir:        filepath.Join(work, "node"),
		PauseImage: filepath.Join(images, "pause.tar"),
		Log:        func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) },
	}
	defer os.RemoveAll(work)
	if cfg.ControlPlaneBin, err = script("hack/build-control-plane.sh"); err == nil {
		cfg.NodeBin, err = script("hack/build-node.sh")
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "test/cluster: %v\n", err)
		return 1
	}
	if missing := node.Prerequisites(cfg); len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "test/cluster: the one-node cluster test cannot run here; missing: %s\n"+
			"(make test runs hack/install-node-packages.sh and hack/build-node.sh first, as root)\n", strings.Join(missing, "; "))
		return 1
	}
	if err := buildImages(images); err != nil {
		fmt.Fprintf(os.Stderr, "test/cluster: building images: %v\n", err)
		return 1
	}

	before := readSysctls()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	start := time.Now()
	cluster, err = node.Start(ctx, cfg)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "test/cluster: starting the one-node cluster: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "test/cluster: node Ready in %s\n", time.Since(start).Round(time.Second))
	for s, v := range cluster.CoveredSysctls() {
		if v != before[s] {
			fmt.Fprintf(os.Stderr, "test/cluster: the node set %s to %s in its own copy; the host keeps %s\n", s, v, before[s])
		}
	}
	code := func() int {
		for _, tarball := range []string{"tokensmith.tar", "saclient.tar"} {
			if err := cluster.ImportImage(context.Background(), filepath.Join(images, tarball)); err != nil {
				fmt.Fprintf(os.Stderr, "test/cluster: importing %s: %v\n", tarball, err)
				return 1
			}
		}
		return m.Run()
	}()
	cluster.Stop()
	if changed := compareSysctls(before, readSysctls()); changed != "" {
		fmt.Fprintf(os.Stderr, "test/cluster: the node changed the host's kernel settings: %s\n", changed)
		code = 1
	}
	return code
}

// script runs a hack/ build script and returns the directory it prints.
func script(name string) (string, error) {
	cmd := exec.Command(filepath.Join(repoRoot, name))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// buildImages builds the product image exactly as "make image" does, and the
// sandbox image, into dir.
func buildImages(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, b := range []struct{ pkg, out string }{{".", "tokensmith"}, {"./hack/pause", "pause"}, {"./test/cluster/saclient", "saclient"}} {
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, b.out), b.pkg)
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w: %s", b.pkg, err, out)
		}
	}
	for _, i := range []struct {
		spec      ociimage.Spec
		file, ref string
	}{
		{ociimage.Tokensmith(filepath.Join(dir, "tokensmith"), ociimage.Labels("cluster-test", "")), "tokensmith.tar", imageRepository + ":" + imageTag},
		{ociimage.Pause(filepath.Join(dir, "pause")), "pause.tar", node.PauseImage},
		{ociimage.Spec{Binary: filepath.Join(dir, "saclient"), Path: "/saclient", User: "65532:65532", WorkingDir: "/"}, "saclient.tar", saclientImage},
	} {
		img, err := ociimage.Build(i.spec)
		if err != nil {
			return err
		}
		if err := ociimage.WriteTarball(filepath.Join(dir, i.file), i.ref, img); err != nil {
			return err
		}
	}
	return nil
}

// watchedSysctls are host-wide kernel settings a node could change: the ones
// kubelet writes, and the ones kube-proxy and CNI could.
var watchedSysctls = []string{
	"kernel/panic", "kernel/panic_on_oops", "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
	"vm/overcommit_memory", "vm/panic_on_oom", "net/ipv4/ip_forward", "net/netfilter/nf_conntrack_max",
	"net/ipv4/conf/all/route_localnet",
}

func readSysctls() map[string]string {
	m := map[string]string{}
	for _, s := range watchedSysctls {
		if v, err := os.ReadFile("/proc/sys/" + s); err == nil {
			m[s] = strings.TrimSpace(string(v))
		}
	}
	return m
}

func compareSysctls(before, after map[string]string) string {
	var changed []string
	for k, v := range before {
		if after[k] != v {
			changed = append(changed, fmt.Sprintf("%s %s -> %s", k, v, after[k]))
		}
	}
	return strings.Join(changed, ", ")
}
