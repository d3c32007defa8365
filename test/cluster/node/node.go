// Package node runs a one-node Kubernetes cluster for tests: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy
// and containerd, built or installed by hack/, all in a network and mount
// namespace of their own.
//
// Isolation, because the machine is shared:
//   - Network: the node's namespace has loopback, one /32 node address and a
//     blackhole default route, so no packet leaves it. Tests reach it through
//     Cluster.DialContext, which opens sockets inside the namespace; the host
//     gets no route and no address.
//   - Files: the fixed paths kubelet, containerd and CNI write to are bind mounts
//     of directories under the work directory, visible only in the node's mount
//     namespace.
//   - Kernel settings: the global sysctls kubelet writes are covered, in that
//     mount namespace, by files holding the host's values.
//   - Processes: Stop ends every process it started, and every process that
//     runs in the node's mount namespace (containerd's shims) with their
//     children (the containers), by PID; then it removes the cgroups they left,
//     the mounts, the namespaces and the work directory.
package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Config says where the binaries are and where the cluster may write.
type Config struct {
	// Name names the network namespace; it must be unique on the machine.
	Name string
	// Dir is the work directory; Stop removes it.
	Dir string
	// ControlPlaneBin holds etcd and kube-apiserver (hack/build-control-plane.sh).
	ControlPlaneBin string
	// NodeBin holds kubelet, kube-controller-manager, kube-scheduler and
	// kube-proxy (hack/build-node.sh).
	NodeBin string
	// PauseImage is the tarball of the sandbox image (hack/image -pause).
	PauseImage string
	// Log receives progress lines.
	Log func(format string, args ...any)
}

// Cluster is a running one-node cluster.
type Cluster struct {
	cfg       Config
	netnsPath string
	mntnsPath string
	pki       *pki
	procs     []*proc
	cgroups   map[string]bool
	// Kubeconfig is an admin kubeconfig for the API server at NodeIP; use it
	// with RESTConfig's dialer, or from inside the node's namespaces.
	Kubeconfig string
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

// Prerequisites names what the cluster needs on the machine that is missing;
// empty when everything is there.
func Prerequisites(cfg Config) []string {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (namespaces, mounts, containerd)")
	}
	for _, tool := range []string{"ip", "nsenter", "unshare", "mount", "umount", "containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool+" (hack/install-node-packages.sh)")
		}
	}
	for _, f := range []string{"/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback", "/usr/lib/cni/portmap"} {
		if _, err := os.Stat(f); err != nil {
			missing = append(missing, f+" (containernetworking-plugins, hack/install-node-packages.sh)")
		}
	}
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(cfg.ControlPlaneBin, b)); err != nil {
			missing = append(missing, b+" (hack/build-control-plane.sh)")
		}
	}
	for _, b := range []string{"kubelet", "kube-controller-manager", "kube-scheduler", "kube-proxy"} {
		if _, err := os.Stat(filepath.Join(cfg.NodeBin, b)); err != nil {
			missing = append(missing, b+" (hack/build-node.sh)")
		}
	}
	return missing
}

// Start brings the cluster up until the node is Ready. On error it has already
// cleaned up after itself.
func Start(ctx context.Context, cfg Config) (c *Cluster, err error) {
	if missing := Prerequisites(cfg); len(missing) > 0 {
		return nil, fmt.Errorf("the one-node cluster needs: %s", strings.Join(missing, ", "))
	}
	if cfg.Log == nil {
		cfg.Log = func(string, ...any) {}
	}
	started := &Cluster{cfg: cfg, netnsPath: "/run/netns/" + cfg.Name, mntnsPath: filepath.Join(cfg.Dir, "ns", "mnt")}
	defer func() {
		if err != nil {
			started.Stop()
		}
	}()
	c = started
	c.cgroups = cgroupDirs()
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"certificates and configuration", c.writeFiles},
		{"network namespace", c.makeNetns},
		{"mount namespace", c.makeMountns},
		{"etcd and kube-apiserver", c.startControlPlane},
		{"containerd and images", c.startContainerd},
		{"controller-manager, scheduler, kubelet and kube-proxy", c.startNode},
	}
	for _, s := range steps {
		start := time.Now()
		if err := s.fn(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w\n%s", s.name, err, c.LogTails(30))
		}
		cfg.Log("node: %s up in %s", s.name, time.Since(start).Round(time.Millisecond))
	}
	return c, nil
}

// RESTConfig is an admin client configuration that reaches the API server
// through the node's network namespace.
func (c *Cluster) RESTConfig() (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.Dial = c.DialContext
	cfg.QPS, cfg.Burst = 100, 200
	return cfg, nil
}

func (c *Cluster) path(parts ...string) string {
	return filepath.Join(append([]string{c.cfg.Dir}, parts...)...)
}

func (c *Cluster) writeFiles(context.Context) error {
	p, err := newPKI(c.path("pki"))
	if err != nil {
		return err
	}
	c.pki = p
	if err := p.issue("apiserver", "kube-apiserver", nil, []string{NodeIP, apiServiceIP, "127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}); err != nil {
		return err
	}
	if err := p.issue("admin", "tokensmith-test-admin", []string{"system:masters"}, nil); err != nil {
		return err
	}
	if err := p.serviceAccountKey(); err != nil {
		return err
	}
	server := fmt.Sprintf("https://%s:%d", NodeIP, apiServerPort)
	c.Kubeconfig = c.path("admin.kubeconfig")
	files := map[string]string{
		"admin.kubeconfig":       kubeconfig(server, p.dir, "admin"),
		"containerd.toml":        containerdConfig(),
		"kubelet.yaml":           kubeletConfig(p.dir),
		"kube-proxy.yaml":        kubeProxyConfig(c.Kubeconfig),
		"cni/10-bridge.conflist": cniConfig(),
	}
	for name, content := range files {
		if err := os.MkdirAll(filepath.Dir(c.path(name)), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(c.path(name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	return os.MkdirAll(c.path("logs"), 0o755)
}

func (c *Cluster) makeNetns(context.Context) error {
	if err := run("ip", "netns", "add", c.cfg.Name); err != nil {
		return err
	}
	in := func(args ...string) error { return run("ip", append([]string{"-n", c.cfg.Name}, args...)...) }
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		// The node's address; on loopback, since this kernel has no dummy links.
		{"addr", "add", NodeIP + "/32", "dev", "lo"},
		// Nothing leaves the namespace: every address outside it is unreachable.
		{"route", "add", "blackhole", "default"},
		// The pods' bridge, made before the CNI plugin would, so the Service
		// range can be routed to it: a connection from the node to a ClusterIP
		// needs a route before kube-proxy's DNAT picks the pod.
		{"link", "add", "cni0", "type", "bridge"},
		{"addr", "add", podGateway + "/24", "dev", "cni0"},
		{"link", "set", "cni0", "up"},
		{"route", "add", serviceCIDR, "dev", "cni0", "src", NodeIP},
	} {
		if err := in(args...); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) makeMountns(context.Context) error {
	nsDir := filepath.Dir(c.mntnsPath)
	if err := os.MkdirAll(nsDir, 0o700); err != nil {
		return err
	}
	// A persistent mount namespace is a bind mount of its nsfs file, which must
	// sit on a private mount.
	if err := run("mount", "--bind", nsDir, nsDir); err != nil {
		return err
	}
	if err := run("mount", "--make-private", nsDir); err != nil {
		return err
	}
	if err := os.WriteFile(c.mntnsPath, nil, 0o600); err != nil {
		return err
	}
	if err := run("unshare", "--mount="+c.mntnsPath, "--propagation", "private", "true"); err != nil {
		return err
	}
	var script strings.Builder
	script.WriteString("set -e\n")
	for _, p := range privateDirs {
		dir := c.path("root", strings.TrimPrefix(p, "/"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		fmt.Fprintf(&script, "mount --bind %q %q\n", dir, p)
	}
	for _, s := range hostSysctls {
		value, err := os.ReadFile("/proc/sys/" + s)
		if err != nil {
			return err
		}
		file := c.path("sysctl", strings.ReplaceAll(s, "/", "."))
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(file, value, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(&script, "mount --bind %q %q\n", file, "/proc/sys/"+s)
	}
	fmt.Fprintf(&script, "mkdir -p /var/lib/cni/net.d && cp %q /var/lib/cni/net.d/\n", c.path("cni", "10-bridge.conflist"))
	return run("nsenter", "--mount="+c.mntnsPath, "--net="+c.netnsPath, "--", "sh", "-c", script.String())
}

func (c *Cluster) startControlPlane(ctx context.Context) error {
	if err := c.start("etcd", filepath.Join(c.cfg.ControlPlaneBin, "etcd"),
		"--data-dir="+c.path("etcd"),
		"--listen-client-urls=http://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=default=http://127.0.0.1:2380", "--unsafe-no-fsync=true", "--log-level=warn"); err != nil {
		return err
	}
	return c.startAPIServer(ctx)
}

func (c *Cluster) startAPIServer(ctx context.Context) error {
	p := c.pki.dir
	if err := c.start("kube-apiserver", filepath.Join(c.cfg.ControlPlaneBin, "kube-apiserver"),
		"--etcd-servers=http://127.0.0.1:2379",
		"--bind-address=0.0.0.0", fmt.Sprintf("--secure-port=%d", apiServerPort), "--advertise-address="+NodeIP,
		"--service-cluster-ip-range="+serviceCIDR,
		"--tls-cert-file="+p+"/apiserver.crt", "--tls-private-key-file="+p+"/apiserver.key",
		"--client-ca-file="+p+"/ca.crt",
		"--kubelet-client-certificate="+p+"/admin.crt", "--kubelet-client-key="+p+"/admin.key",
		"--kubelet-certificate-authority=",
		"--kubelet-preferred-address-types=InternalIP",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+p+"/sa.pub", "--service-account-signing-key-file="+p+"/sa.key",
		"--authorization-mode=Node,RBAC",
		"--allow-privileged=false",
		"--profiling=false"); err != nil {
		return err
	}
	return c.waitHTTP(ctx, "kube-apiserver", "/readyz", 2*time.Minute)
}

// StopAPIServer stops kube-apiserver (SIGTERM, then SIGKILL after 10s) and
// waits until it has exited; everything else keeps running. StartAPIServer
// brings it back.
func (c *Cluster) StopAPIServer() error {
	for i, p := range c.procs {
		if p.name != "kube-apiserver" {
			continue
		}
		p.stop()
		c.procs = append(c.procs[:i], c.procs[i+1:]...)
		return nil
	}
	return errors.New("kube-apiserver is not running")
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, with the
// same flags, and waits until it is ready.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	for _, p := range c.procs {
		if p.name == "kube-apiserver" {
			return errors.New("kube-apiserver is already running")
		}
	}
	return c.startAPIServer(ctx)
}

func (c *Cluster) startContainerd(ctx context.Context) error {
	if err := c.start("containerd", "containerd", "--config="+c.path("containerd.toml")); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if err := c.nsRun("ctr", "--address", containerdSock, "version"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("containerd did not answer within 1m")
		}
		if err := c.exited("containerd"); err != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return c.ImportImage(ctx, c.cfg.PauseImage)
}

// ImportImage loads an image tarball (hack/image) into containerd's Kubernetes
// namespace, where kubelet finds it without pulling.
func (c *Cluster) ImportImage(_ context.Context, tarball string) error {
	return c.nsRun("ctr", "--address", containerdSock, "-n", "k8s.io", "images", "import", "--no-unpack=false", tarball)
}

func (c *Cluster) startNode(ctx context.Context) error {
	p := c.pki.dir
	if err := c.start("kube-controller-manager", filepath.Join(c.cfg.NodeBin, "kube-controller-manager"),
		"--kubeconfig="+c.Kubeconfig, "--authentication-kubeconfig="+c.Kubeconfig, "--authorization-kubeconfig="+c.Kubeconfig,
		"--service-account-private-key-file="+p+"/sa.key", "--root-ca-file="+p+"/ca.crt",
		"--use-service-account-credentials=true", "--leader-elect=false",
		"--bind-address=127.0.0.1", "--service-cluster-ip-range="+serviceCIDR); err != nil {
		return err
	}
	if err := c.start("kube-scheduler", filepath.Join(c.cfg.NodeBin, "kube-scheduler"),
		"--kubeconfig="+c.Kubeconfig, "--authentication-kubeconfig="+c.Kubeconfig, "--authorization-kubeconfig="+c.Kubeconfig,
		"--leader-elect=false", "--bind-address=127.0.0.1"); err != nil {
		return err
	}
	if err := c.start("kubelet", filepath.Join(c.cfg.NodeBin, "kubelet"),
		"--config="+c.path("kubelet.yaml"), "--kubeconfig="+c.Kubeconfig,
		"--hostname-override="+NodeName, "--node-ip="+NodeIP); err != nil {
		return err
	}
	if err := c.start("kube-proxy", filepath.Join(c.cfg.NodeBin, "kube-proxy"), "--config="+c.path("kube-proxy.yaml")); err != nil {
		return err
	}
	return c.waitNodeReady(ctx, 3*time.Minute)
}

// start runs a component inside the node's namespaces, its output in logs/.
func (c *Cluster) start(name string, argv ...string) error {
	// Appended to: a component started again (StartAPIServer) keeps its history.
	log, err := os.OpenFile(c.path("logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := append([]string{"--net=" + c.netnsPath, "--mount=" + c.mntnsPath, "--"}, argv...)
	cmd := exec.Command("nsenter", args...)
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, and killed with this process if it dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	p := &proc{name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	c.procs = append(c.procs, p)
	return nil
}

// exited reports an error if the named component has stopped.
func (c *Cluster) exited(name string) error {
	for _, p := range c.procs {
		if p.name != name {
			continue
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %s", name, p.cmd.ProcessState)
		default:
		}
	}
	return nil
}

// nsRun runs a command inside the node's namespaces and waits for it.
func (c *Cluster) nsRun(argv ...string) error {
	return run("nsenter", append([]string{"--net=" + c.netnsPath, "--mount=" + c.mntnsPath, "--"}, argv...)...)
}

// LogTails returns the last n lines of every component's log.
func (c *Cluster) LogTails(n int) string {
	var b strings.Builder
	for _, p := range c.procs {
		data, err := os.ReadFile(p.log.Name())
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		fmt.Fprintf(&b, "----- %s (last %d lines) -----\n%s\n", p.name, len(lines), strings.Join(lines, "\n"))
	}
	return b.String()
}

func run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// CoveredSysctls returns what the node's components wrote into the files that
// stand in for the host's global kernel settings, by sysctl path.
func (c *Cluster) CoveredSysctls() map[string]string {
	m := map[string]string{}
	for _, s := range hostSysctls {
		if v, err := os.ReadFile(c.path("sysctl", strings.ReplaceAll(s, "/", "."))); err == nil {
			m[s] = strings.TrimSpace(string(v))
		}
	}
	return m
}

// KillContainer sends SIGKILL to a container's process through containerd, as
// an OOM kill or a crash would end it; kubelet sees it exit and restarts it.
// id is a pod status's containerID without its "containerd://" prefix.
func (c *Cluster) KillContainer(id string) error {
	return c.nsRun("ctr", "--address", containerdSock, "-n", "k8s.io", "tasks", "kill", "--signal", "SIGKILL", id)
}
