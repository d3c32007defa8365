// Package chart_test renders the tokensmith Helm chart with the Helm Go SDK and
// checks it: helm lint, the values schema, the wiring between objects, the
// restricted Pod Security profile, and (apiserver_test.go) that a real
// kube-apiserver accepts every object and enforces the RBAC the chart claims.
package chart_test

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/tokensmith/tokensmith/controllers"
)

const (
	releaseName      = "tokensmith"
	releaseNamespace = "tokensmith-system"
	// kubeVersion is the version of the kube-apiserver the tests run against
	// (hack/tools pins it); rendering and lint use it for .Capabilities.
	kubeVersion = "v1.37.2"
)

// valueSets are the configurations every test renders: the defaults and the
// non-default switches a platform team is likely to turn.
var valueSets = []struct {
	name   string
	values string
}{
	{name: "defaults", values: ``},
	{name: "autoscaling, ServiceMonitor and NetworkPolicy on", values: `
server:
  autoscaling: {enabled: true, minReplicas: 3, maxReplicas: 6}
metrics:
  serviceMonitor: {enabled: true, labels: {release: prometheus}}
networkPolicy:
  enabled: true
  serverFrom:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ingress-nginx}}
  metricsFrom:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}
`},
	{name: "CRDs managed elsewhere and development settings", values: `
fullnameOverride: ts-dev
crds: {enabled: false}
image: {digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
tokenURL: https://auth.example.com/oauth/token
logging: {level: debug, encoder: console}
controller:
  replicas: 1
  leaderElection: {enabled: false}
  keyRotationPeriod: 720h
  keyRetention: 9000h
  concurrentReconciles: 2
  kubeAPI: {qps: 20, burst: 30}
  topologySpreadConstraints: []
  extraArgs: ["--zap-stacktrace-level=panic"]
server:
  replicas: 1
  issuer: https://auth.example.com
  devMode: true
  deviceLoginClient: device-login
  trustedProxies: [10.0.0.0/8, "fd00::/8"]
  service: {port: 8080}
  podDisruptionBudget: {enabled: false}
  topologySpreadConstraints: []
  podLabels: {team: platform}
  extraEnv: [{name: GODEBUG, value: "x509negativeserial=0"}]
`},
}

func loadChart(t testing.TB) *chart.Chart {
	t.Helper()
	c, err := loader.Load(".")
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	return c
}

func capabilities() *chartutil.Capabilities {
	caps := *chartutil.DefaultCapabilities
	caps.KubeVersion = chartutil.KubeVersion{Version: kubeVersion, Major: "1", Minor: "37"}
	return &caps
}

// renderRaw renders the chart as "helm install" would, with the values schema
// checked, and returns the rendered files by template name.
func renderRaw(t testing.TB, values string) (map[string]string, error) {
	t.Helper()
	c := loadChart(t)
	vals, err := chartutil.ReadValues([]byte(values))
	if err != nil {
		t.Fatalf("parsing test values: %v", err)
	}
	rv, err := chartutil.ToRenderValues(c, vals.AsMap(), chartutil.ReleaseOptions{
		Name: releaseName, Namespace: releaseNamespace, Revision: 1, IsInstall: true,
	}, capabilities())
	if err != nil {
		return nil, err
	}
	// Strict: a template that reads a value missing from values.yaml is a bug.
	return engine.Engine{Strict: true}.Render(c, rv)
}

// render returns every object the chart renders for values, sorted by kind and name.
func render(t testing.TB, values string) []*unstructured.Unstructured {
	t.Helper()
	files, err := renderRaw(t, values)
	if err != nil {
		t.Fatalf("rendering the chart: %v", err)
	}
	var objs []*unstructured.Unstructured
	for name, content := range files {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		for _, doc := range releaseutil.SplitManifests(content) {
			m := map[string]any{}
			if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
				t.Fatalf("%s: not YAML: %v\n%s", name, err, doc)
			}
			if len(m) == 0 {
				continue
			}
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
	sort.Slice(objs, func(i, j int) bool {
		a, b := objs[i], objs[j]
		return a.GetKind()+"/"+a.GetName() < b.GetKind()+"/"+b.GetName()
	})
	return objs
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func ofKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func convert[T any](t testing.TB, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		t.Fatalf("%s %s does not decode strictly: %v", u.GetKind(), u.GetName(), err)
	}
	return out
}

func deployments(t testing.TB, objs []*unstructured.Unstructured) []*appsv1.Deployment {
	t.Helper()
	var out []*appsv1.Deployment
	for _, o := range ofKind(objs, "Deployment") {
		out = append(out, convert[appsv1.Deployment](t, o))
	}
	return out
}

func TestChartLint(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			vals, err := chartutil.ReadValues([]byte(vs.values))
			if err != nil {
				t.Fatal(err)
			}
			kv := &chartutil.KubeVersion{Version: kubeVersion, Major: "1", Minor: "37"}
			linter := lint.AllWithKubeVersion(".", vals.AsMap(), releaseNamespace, kv)
			for _, m := range linter.Messages {
				// INFO is advice such as "icon is recommended"; warnings and errors fail.
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", m)
				} else {
					t.Logf("helm lint: %s", m)
				}
			}
		})
	}
}

func TestValuesSchemaRejectsMistakes(t *testing.T) {
	cases := []struct {
		name   string
		values string
	}{
		{"rejects a misspelt top-level key", "severs: {replicas: 3}"},
		{"rejects a misspelt nested key", "server: {replica: 3}"},
		{"rejects an unknown pull policy", "image: {pullPolicy: Sometimes}"},
		{"rejects a digest that is not sha256", "image: {digest: latest}"},
		{"rejects a port out of range", "server: {port: 70000}"},
		{"rejects a non-numeric replica count", "controller: {replicas: two}"},
		{"rejects an issuer that is not a URL", "server: {issuer: auth.example.com}"},
		{"rejects a trusted proxy that is not a CIDR", "server: {trustedProxies: [10.0.0.1]}"},
		{"rejects a malformed key rotation period", "controller: {keyRotationPeriod: 30 days}"},
		{"rejects zero concurrent reconciles", "controller: {concurrentReconciles: 0}"},
		{"rejects a zero API QPS", "controller: {kubeAPI: {qps: 0}}"},
		{"rejects a misspelt API rate key", "controller: {kubeAPI: {qsp: 10}}"},
		{"rejects an unknown log level", "logging: {level: verbose}"},
		{"rejects shutdown steps longer than the grace period", "server: {terminationGracePeriodSeconds: 10, shutdown: {preStopSleepSeconds: 5, drainSeconds: 5, timeoutSeconds: 5}}"},
		{"rejects a negative preStop sleep", "server: {shutdown: {preStopSleepSeconds: -1}}"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := renderRaw(t, tc.values); err == nil {
				t.Fatalf("values %q rendered without error", tc.values)
			}
		})
	}
}

func TestEveryNamespacedObjectIsInTheReleaseNamespace(t *testing.T) {
	clusterScoped := map[string]bool{"ClusterRole": true, "ClusterRoleBinding": true, "CustomResourceDefinition": true,
		"ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true}
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			for _, o := range render(t, vs.values) {
				if clusterScoped[o.GetKind()] {
					if o.GetNamespace() != "" {
						t.Errorf("%s %s: cluster-scoped but has namespace %q", o.GetKind(), o.GetName(), o.GetNamespace())
					}
					continue
				}
				if o.GetNamespace() != releaseNamespace {
					t.Errorf("%s %s: namespace %q, want %q (\"helm template | kubectl apply\" must not scatter objects)",
						o.GetKind(), o.GetName(), o.GetNamespace(), releaseNamespace)
				}
			}
		})
	}
}

func TestDefaultsRunTwoReplicasOfEachWithLeaderElection(t *testing.T) {
	objs := render(t, "")
	for _, d := range deployments(t, objs) {
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
			t.Errorf("Deployment %s: replicas %v, want 2", d.Name, d.Spec.Replicas)
		}
		if len(d.Spec.Template.Spec.TopologySpreadConstraints) == 0 {
			t.Errorf("Deployment %s: no topologySpreadConstraints", d.Name)
		}
		for _, c := range d.Spec.Template.Spec.TopologySpreadConstraints {
			sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
			if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Errorf("Deployment %s: spread constraint on %s does not select its own pods", d.Name, c.TopologyKey)
			}
		}
	}
	ctrl := convert[appsv1.Deployment](t, find(objs, "Deployment", "tokensmith-controller"))
	args := ctrl.Spec.Template.Spec.Containers[0].Args
	if !slices.Contains(args, "--leader-elect=true") {
		t.Errorf("controller args %v: leader election is not on", args)
	}
	// The chart's defaults are the binary's.
	for flag, want := range map[string]int{
		"--concurrent-reconciles": controllers.DefaultConcurrentReconciles,
		"--kube-api-qps":          controllers.DefaultKubeAPIQPS,
		"--kube-api-burst":        controllers.DefaultKubeAPIBurst,
	} {
		if got := flagValue(args, flag); got != fmt.Sprint(want) {
			t.Errorf("controller %s=%q, want the binary's default %d", flag, got, want)
		}
	}
	if find(objs, "PodDisruptionBudget", "tokensmith-server") == nil {
		t.Error("no PodDisruptionBudget for the token server")
	}
	for _, kind := range []string{"HorizontalPodAutoscaler", "ServiceMonitor", "NetworkPolicy"} {
		if len(ofKind(objs, kind)) != 0 {
			t.Errorf("%s rendered although it is off by default", kind)
		}
	}
}

// TestServerShutsDownWithoutDroppingRequests: the rolling-upgrade path that
// test/cluster measures (docs/operations.md): a preStop sleep while the
// endpoint leaves the Service, then the binary's drain and graceful shutdown,
// all within the grace period; readiness checked often enough to follow it.
func TestServerShutsDownWithoutDroppingRequests(t *testing.T) {
	objs := render(t, "")
	server := convert[appsv1.Deployment](t, find(objs, "Deployment", "tokensmith-server"))
	pod := server.Spec.Template.Spec
	c := pod.Containers[0]
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds != 5 {
		t.Fatalf("server preStop: %+v, want a 5s sleep action (the image has no shell)", c.Lifecycle)
	}
	if got := flagValue(c.Args, "--shutdown-drain"); got != "5s" {
		t.Errorf("--shutdown-drain=%q, want 5s", got)
	}
	if got := flagValue(c.Args, "--shutdown-timeout"); got != "10s" {
		t.Errorf("--shutdown-timeout=%q, want 10s", got)
	}
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds <= 5+5+10 {
		t.Errorf("terminationGracePeriodSeconds %v does not cover preStop + drain + timeout (20s)", pod.TerminationGracePeriodSeconds)
	}
	if p := c.ReadinessProbe; p == nil || p.PeriodSeconds != 2 || p.FailureThreshold != 2 {
		t.Errorf("readiness probe %+v, want every 2s, 2 failures", p)
	}
	if s := server.Spec.Strategy.RollingUpdate; s == nil || s.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update %+v, want maxUnavailable 0", s)
	}

	objs = render(t, "server: {shutdown: {preStopSleepSeconds: 0}}")
	server = convert[appsv1.Deployment](t, find(objs, "Deployment", "tokensmith-server"))
	if l := server.Spec.Template.Spec.Containers[0].Lifecycle; l != nil {
		t.Errorf("preStopSleepSeconds 0 still renders a lifecycle: %+v", l)
	}
}

func TestAutoscalingLeavesServerReplicasToTheHPA(t *testing.T) {
	objs := render(t, valueSets[1].values)
	server := convert[appsv1.Deployment](t, find(objs, "Deployment", "tokensmith-server"))
	if server.Spec.Replicas != nil {
		t.Errorf("server Deployment sets replicas %d; with an HPA it must not (every upgrade would reset the scale)", *server.Spec.Replicas)
	}
	hpa := find(objs, "HorizontalPodAutoscaler", "tokensmith-server")
	if hpa == nil {
		t.Fatal("no HorizontalPodAutoscaler")
	}
	if target, _, _ := unstructured.NestedString(hpa.Object, "spec", "scaleTargetRef", "name"); target != server.Name {
		t.Errorf("HPA scales %q, want %q", target, server.Name)
	}
}

// TestTokenURLReachesTheServer follows the controller's --token-url to a
// Service in the render and on to the server container's port.
func TestTokenURLReachesTheServer(t *testing.T) {
	objs := render(t, "")
	ctrl := convert[appsv1.Deployment](t, find(objs, "Deployment", "tokensmith-controller"))
	tokenURL := flagValue(ctrl.Spec.Template.Spec.Containers[0].Args, "--token-url")
	if tokenURL != "http://tokensmith.tokensmith-system.svc/oauth/token" {
		// Also the binary's own default for a release named "tokensmith".
		t.Errorf("--token-url = %q", tokenURL)
	}
	u, err := url.Parse(tokenURL)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.Split(u.Hostname(), ".")
	if len(host) != 3 || host[1] != releaseNamespace || host[2] != "svc" {
		t.Fatalf("token URL host %q is not <service>.%s.svc", u.Hostname(), releaseNamespace)
	}
	svcObj := find(objs, "Service", host[0])
	if svcObj == nil {
		t.Fatalf("token URL names Service %q, which the chart does not render", host[0])
	}
	svc := convert[corev1.Service](t, svcObj)
	port := 80
	if u.Port() != "" {
		if _, err := fmt.Sscan(u.Port(), &port); err != nil {
			t.Fatalf("token URL port %q: %v", u.Port(), err)
		}
	}
	server := convert[appsv1.Deployment](t, find(objs, "Deployment", "tokensmith-server"))
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(server.Spec.Template.Labels)) {
		t.Fatalf("Service %s does not select the server pods", svc.Name)
	}
	for _, p := range svc.Spec.Ports {
		if int(p.Port) != port {
			continue
		}
		c := server.Spec.Template.Spec.Containers[0]
		if containerPort(c, p.TargetPort) != 4000 || flagValue(c.Args, "--listen") != ":4000" {
			t.Errorf("Service port %d targets %v, not the server's --listen port 4000", port, p.TargetPort)
		}
		return
	}
	t.Errorf("Service %s has no port %d", svc.Name, port)
}

// TestSelectorsSelectTheirComponent checks that every Service, PodDisruptionBudget
// and NetworkPolicy selects the pods of exactly one Deployment.
func TestSelectorsSelectTheirComponent(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			objs := render(t, vs.values)
			deps := deployments(t, objs)
			check := func(kind, name string, sel labels.Selector) {
				n := 0
				for _, d := range deps {
					if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
						n++
					}
				}
				if n != 1 {
					t.Errorf("%s %s selects the pods of %d Deployments, want 1", kind, name, n)
				}
			}
			for _, o := range ofKind(objs, "Service") {
				svc := convert[corev1.Service](t, o)
				check("Service", svc.Name, labels.SelectorFromSet(svc.Spec.Selector))
			}
			for _, kind := range []string{"PodDisruptionBudget", "NetworkPolicy"} {
				for _, o := range ofKind(objs, kind) {
					path := []string{"spec", "selector", "matchLabels"}
					if kind == "NetworkPolicy" {
						path = []string{"spec", "podSelector", "matchLabels"}
					}
					m, _, _ := unstructured.NestedStringMap(o.Object, path...)
					if len(m) == 0 {
						t.Errorf("%s %s: empty selector", kind, o.GetName())
					}
					check(kind, o.GetName(), labels.SelectorFromSet(m))
				}
			}
		})
	}
}

// TestPodTemplatesPassRestrictedProfileFields checks, field by field, what the
// Pod Security "restricted" profile requires; apiserver_test.go also has the
// real admission plugin judge the same pods.
func TestPodTemplatesPassRestrictedProfileFields(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			deps := deployments(t, render(t, vs.values))
			if len(deps) != 2 {
				t.Fatalf("%d Deployments, want 2", len(deps))
			}
			for _, d := range deps {
				checkRestricted(t, d.Name, &d.Spec.Template.Spec)
				checkProbesAndNamespace(t, d.Name, &d.Spec.Template.Spec)
			}
		})
	}
}

func checkRestricted(t *testing.T, name string, pod *corev1.PodSpec) {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil {
		t.Fatalf("%s: no pod securityContext", name)
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Errorf("%s: uses host namespaces", name)
	}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			t.Errorf("%s: hostPath volume %s", name, v.Name)
		}
	}
	if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("%s: pod runAsNonRoot is not true", name)
	}
	if psc.RunAsUser == nil || *psc.RunAsUser != 65532 {
		t.Errorf("%s: pod runAsUser %v, want 65532", name, psc.RunAsUser)
	}
	if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod seccompProfile is not RuntimeDefault", name)
	}
	all := append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...)
	for _, c := range all {
		where := name + "/" + c.Name
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("%s: no container securityContext", where)
			continue
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: privileged", where)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", where)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem is not true", where)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s: capabilities do not drop ALL", where)
		} else if len(sc.Capabilities.Add) != 0 {
			t.Errorf("%s: adds capabilities %v", where, sc.Capabilities.Add)
		}
		if sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot {
			t.Errorf("%s: runAsNonRoot overridden to false", where)
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			t.Errorf("%s: runs as root", where)
		}
		if sc.SeccompProfile != nil && sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: container seccompProfile %s", where, sc.SeccompProfile.Type)
		}
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				t.Errorf("%s: hostPort %d", where, p.HostPort)
			}
		}
	}
}

func checkProbesAndNamespace(t *testing.T, name string, pod *corev1.PodSpec) {
	t.Helper()
	for _, c := range pod.Containers {
		where := name + "/" + c.Name
		for _, p := range []struct {
			kind  string
			probe *corev1.Probe
			path  string
		}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
			if p.probe == nil || p.probe.HTTPGet == nil {
				t.Errorf("%s: no HTTP %s probe", where, p.kind)
				continue
			}
			if p.probe.HTTPGet.Path != p.path {
				t.Errorf("%s: %s probe path %q, want %q", where, p.kind, p.probe.HTTPGet.Path, p.path)
			}
			if containerPort(c, p.probe.HTTPGet.Port) == 0 {
				t.Errorf("%s: %s probe port %v is not a container port", where, p.kind, p.probe.HTTPGet.Port)
			}
		}
		ok := false
		for _, e := range c.Env {
			if e.Name == "POD_NAMESPACE" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace" {
				ok = true
			}
		}
		if !ok {
			t.Errorf("%s: POD_NAMESPACE does not come from the downward API", where)
		}
		// Issue 15, finding 3: the runtime must know the container's memory limit.
		ok = false
		for _, e := range c.Env {
			if e.Name == "TOKENSMITH_MEMORY_LIMIT" && e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil &&
				e.ValueFrom.ResourceFieldRef.Resource == "limits.memory" && e.ValueFrom.ResourceFieldRef.ContainerName == c.Name {
				ok = true
			}
		}
		if !ok {
			t.Errorf("%s: TOKENSMITH_MEMORY_LIMIT does not come from the container's limits.memory", where)
		}
	}
}

func TestCRDsAreKeptAndOptional(t *testing.T) {
	crds := ofKind(render(t, ""), "CustomResourceDefinition")
	if len(crds) != 4 {
		t.Fatalf("%d CRDs rendered, want 4", len(crds))
	}
	for _, crd := range crds {
		if crd.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("CRD %s lacks helm.sh/resource-policy: keep; helm uninstall would delete every resource", crd.GetName())
		}
	}
	if n := len(ofKind(render(t, "crds: {enabled: false}"), "CustomResourceDefinition")); n != 0 {
		t.Errorf("crds.enabled=false still renders %d CRDs", n)
	}
}

// TestCRDsInSyncWithConfig fails when the chart's CRDs differ from
// config/crd/bases: run "make manifests" (hack/sync-chart-crds.sh).
func TestCRDsInSyncWithConfig(t *testing.T) {
	rendered := ofKind(render(t, ""), "CustomResourceDefinition")
	bases, err := filepath.Glob("../../config/crd/bases/*.yaml")
	if err != nil || len(bases) == 0 {
		t.Fatalf("no CRDs in config/crd/bases: %v", err)
	}
	if len(bases) != len(rendered) {
		t.Errorf("config/crd/bases has %d CRDs, the chart %d: run make manifests", len(bases), len(rendered))
	}
	for _, path := range bases {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]any{}
		if err := yaml.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		w := &unstructured.Unstructured{Object: want}
		got := find(rendered, "CustomResourceDefinition", w.GetName())
		if got == nil {
			t.Errorf("%s: CRD %s is not in the chart: run make manifests", path, w.GetName())
			continue
		}
		g := got.DeepCopy()
		ann := g.GetAnnotations()
		delete(ann, "helm.sh/resource-policy")
		g.SetAnnotations(ann)
		if !reflect.DeepEqual(g.Object, w.Object) {
			t.Errorf("chart CRD %s differs from %s: run make manifests", w.GetName(), path)
		}
	}
}

// TestControllerRBACInSyncWithConfig fails when the chart's copy of the
// controller-gen ClusterRole differs from config/rbac/role.yaml: run
// hack/sync-chart-rbac.sh.
func TestControllerRBACInSyncWithConfig(t *testing.T) {
	want, err := os.ReadFile("../../config/rbac/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("files/controller-role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("charts/tokensmith/files/controller-role.yaml differs from config/rbac/role.yaml: run hack/sync-chart-rbac.sh")
	}
	var role struct {
		Rules []map[string]any `json:"rules"`
	}
	if err := yaml.Unmarshal(want, &role); err != nil {
		t.Fatal(err)
	}
	cr := find(render(t, ""), "ClusterRole", "tokensmith-controller")
	if cr == nil {
		t.Fatal("no ClusterRole tokensmith-controller")
	}
	rules, _, _ := unstructured.NestedSlice(cr.Object, "rules")
	wantRules := make([]any, len(role.Rules))
	for i, r := range role.Rules {
		wantRules[i] = r
	}
	if !reflect.DeepEqual(rules, wantRules) {
		t.Errorf("rendered controller ClusterRole rules differ from config/rbac/role.yaml:\n got %v\nwant %v", rules, wantRules)
	}
}

// serverArgs are the token server container's arguments in the render of values.
func serverArgs(t *testing.T, values string) []string {
	t.Helper()
	d := convert[appsv1.Deployment](t, find(render(t, values), "Deployment", "tokensmith-server"))
	return d.Spec.Template.Spec.Containers[0].Args
}

// wantFlags checks that args give each flag of want its value.
func wantFlags(t *testing.T, args []string, want map[string]string) {
	t.Helper()
	for flag, v := range want {
		if got := flagValue(args, flag); got != v {
			t.Errorf("%s=%q, want %q", flag, got, v)
		}
	}
}

// schemaRejects checks that the chart's values schema refuses each of values.
func schemaRejects(t *testing.T, values ...string) {
	t.Helper()
	for _, v := range values {
		t.Run("the schema rejects "+v, func(t *testing.T) {
			if _, err := renderRaw(t, v); err == nil {
				t.Fatal("rendered without error")
			}
		})
	}
}

func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// containerPort resolves a named or numbered port of c; 0 if c has no such port.
func containerPort(c corev1.Container, p intstr.IntOrString) int32 {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort
		}
	}
	return 0
}
