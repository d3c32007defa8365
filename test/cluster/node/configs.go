package node

import "fmt"

// The addresses inside the node's network namespace. They exist nowhere else:
// the namespace's default route is a blackhole, so nothing sent to any other
// address leaves it.
const (
	NodeIP         = "10.123.0.2"
	NodeName       = "node"
	podCIDR        = "10.244.0.0/24"
	podGateway     = "10.244.0.1"
	serviceCIDR    = "10.96.0.0/16"
	apiServiceIP   = "10.96.0.1"
	apiServerPort  = 6443
	PauseImage     = "registry.k8s.io/pause:tokensmith-test"
	containerdSock = "/run/containerd/containerd.sock"
)

// privateDirs are the host directories under which kubelet, containerd, runc
// and the CNI plugins write by fixed path (/var/lib/kubelet, /var/lib/cni,
// /run/containerd, /run/netns, /var/log/pods, ...). In the node's mount
// namespace each is covered by a bind mount of a directory under the work
// directory, so nothing lands on the host. They all exist on every host: a
// mount point made on the host for a node could be removed by another node's
// teardown while this one runs, and the kernel then detaches this node's mount
// from under it.
var privateDirs = []string{"/var/lib", "/run", "/var/log"}

// hostSysctls are kernel settings that are global, not per network namespace,
// and that kubelet or kube-proxy write when they start (kubelet's
// protectKernelDefaults list). The node's mount namespace covers each with a
// file of its own, holding the host's value, so the host's kernel settings never
// change; the test checks that they did not.
var hostSysctls = []string{
	"kernel/panic",
	"kernel/panic_on_oops",
	"kernel/keys/root_maxkeys",
	"kernel/keys/root_maxbytes",
	"vm/overcommit_memory",
	"vm/panic_on_oom",
}

func containerdConfig() string {
	return fmt.Sprintf(`version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = "/var/lib/containerd-opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  # runc cannot give a sandbox the oom_score_adj of -998 without
  # CAP_SYS_RESOURCE, which this machine does not grant even to root.
  restrict_oom_score_adj = true
  enable_unprivileged_ports = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/var/lib/cni/net.d"
`, containerdSock, PauseImage)
}

func cniConfig() string {
	return fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "tokensmith-test",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": %q, "gateway": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, podCIDR, podGateway)
}

func kubeletConfig(pkiDir string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine runs cgroup v1 with the cgroupfs driver and no systemd.
cgroupDriver: cgroupfs
failCgroupV1: false
# No per-QoS cgroups and no node allocatable enforcement: both need cgroup
# writes this sandbox does not allow.
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
# No cluster DNS: the pods reach the API server by the environment's ClusterIP.
resolvConf: ""
clusterDNS: []
containerRuntimeEndpoint: unix://%s
address: %s
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %s/ca.crt}
authorization:
  mode: AlwaysAllow
protectKernelDefaults: false
serializeImagePulls: false
# The shared machine's disk may be fuller than kubelet's defaults like.
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "1%%"
  imagefs.available: "1%%"
  nodefs.inodesFree: "1%%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
syncFrequency: 10s
nodeStatusReportFrequency: 10s
shutdownGracePeriod: 0s
volumePluginDir: /var/lib/kubelet/volume-plugins
`, containerdSock, NodeIP, pkiDir)
}

func kubeProxyConfig(kubeconfig string) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: 10.244.0.0/16
hostnameOverride: %s
bindAddress: %s
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clientConnection:
  kubeconfig: %s
# Conntrack limits and timeouts are host-wide settings: leave them alone.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, NodeName, NodeIP, kubeconfig)
}

func kubeconfig(server, pkiDir, user string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: node
  cluster:
    server: %s
    certificate-authority: %s/ca.crt
users:
- name: %s
  user:
    client-certificate: %s/%s.crt
    client-key: %s/%s.key
contexts:
- name: node
  context: {cluster: node, user: %s}
current-context: node
`, server, pkiDir, user, pkiDir, user, pkiDir, user, user)
}
