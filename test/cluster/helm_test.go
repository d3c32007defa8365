package cluster

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/internal/testenv"
)

const (
	release   = "tokensmith"
	namespace = "tokensmith-system"
	// appNamespace is where the samples go, as "kubectl apply -f config/samples/" puts them.
	appNamespace = "default"
)

// kube is what a test needs to talk to the cluster.
type kube struct {
	cfg *rest.Config
	cs  kubernetes.Interface
	c   client.Client
}

func newKube(t *testing.T) kube {
	t.Helper()
	cfg, err := cluster.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return kube{cfg: cfg, cs: cs, c: c}
}

// helmAction is Helm's SDK configured as "helm --namespace tokensmith-system"
// with the cluster's kubeconfig, connecting through the node's namespace.
func helmAction(t *testing.T) *action.Configuration {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(false)
	kubeconfig, ns := cluster.Kubeconfig, namespace
	flags.KubeConfig, flags.Namespace = &kubeconfig, &ns
	flags.WrapConfigFn = func(c *rest.Config) *rest.Config {
		c.Dial = cluster.DialContext
		return c
	}
	cfg := new(action.Configuration)
	// Helm's debug lines say little a failure's dump does not.
	if err := cfg.Init(flags, namespace, "secret", func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(filepath.Join(repoRoot, "charts", "tokensmith"))
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// imageValues are the only values the install changes: the image reference.
func imageValues() map[string]any {
	return map[string]any{"image": map[string]any{"repository": imageRepository, "tag": imageTag}}
}

// startOnNode opens a test on the node: a context that ends after timeout
// or with the test, the clients (the cluster's state dumped when the test
// fails), the restricted release namespace and a Helm configuration.
func startOnNode(t *testing.T, timeout time.Duration) (context.Context, kube, *action.Configuration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	k := newKube(t)
	t.Cleanup(func() {
		if t.Failed() {
			dumpState(t, k)
		}
	})
	createRestrictedNamespace(ctx, t, k)
	return ctx, k, helmAction(t)
}

func createRestrictedNamespace(ctx context.Context, t *testing.T, k kube) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
	}}}
	if _, err := k.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// waitDeploymentsAvailable waits up to 3 minutes until every Deployment of the
// release has all its replicas updated and available, and no old pod is left.
func waitDeploymentsAvailable(ctx context.Context, t *testing.T, k kube) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	var pending []string
	for time.Now().Before(deadline) {
		list, err := k.cs.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{})
		pending = nil
		if err != nil {
			pending = append(pending, err.Error())
		}
		for _, d := range list.Items {
			if !deploymentDone(&d) {
				pending = append(pending, fmt.Sprintf("%s (%d/%d updated, %d available, %d total)", d.Name,
					d.Status.UpdatedReplicas, *d.Spec.Replicas, d.Status.AvailableReplicas, d.Status.Replicas))
			}
		}
		if err == nil && len(list.Items) == 0 {
			pending = append(pending, "no Deployments")
		}
		if len(pending) == 0 {
			pending = podsSettled(ctx, k)
		}
		if crashing := crashLooping(ctx, k); crashing != "" {
			t.Fatalf("a container is crash-looping: %s", crashing)
		}
		if len(pending) == 0 {
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("Deployments not available within 3m: %s", strings.Join(pending, "; "))
}

// podsSettled lists what keeps a rollout from being over for a client: pods
// still terminating, and server endpoints that are not exactly the ready pods.
func podsSettled(ctx context.Context, k kube) []string {
	var pending []string
	pods, err := k.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return []string{err.Error()}
	}
	readyServers := map[string]bool{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			pending = append(pending, "pod "+p.Name+" terminating")
			continue
		}
		if p.Labels["app.kubernetes.io/component"] == "server" && podReady(&p) {
			readyServers[p.Status.PodIP] = true
		}
	}
	slices, err := k.cs.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + release})
	if err != nil {
		return append(pending, err.Error())
	}
	served := map[string]bool{}
	for _, s := range slices.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				for _, a := range e.Addresses {
					served[a] = true
				}
			}
		}
	}
	if len(served) != len(readyServers) {
		pending = append(pending, fmt.Sprintf("Service %s has %d ready endpoints, %d server pods are ready", release, len(served), len(readyServers)))
	}
	for ip := range served {
		if !readyServers[ip] {
			pending = append(pending, "Service endpoint "+ip+" is not a ready server pod")
		}
	}
	return pending
}

// crashLooping names a container that keeps failing to start, if any: there
// is no point waiting out the timeout for it.
func crashLooping(ctx context.Context, k kube) string {
	pods, err := k.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return ""
	}
	for _, p := range pods.Items {
		for _, c := range p.Status.ContainerStatuses {
			if c.RestartCount >= 3 && c.State.Waiting != nil && c.State.Waiting.Reason == "CrashLoopBackOff" {
				return fmt.Sprintf("%s/%s restarted %d times", p.Name, c.Name, c.RestartCount)
			}
		}
	}
	return ""
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func deploymentDone(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason != "NewReplicaSetAvailable" {
			return false
		}
	}
	return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == want &&
		d.Status.AvailableReplicas == want && d.Status.Replicas == want
}

// applySamples server-side applies config/samples/ as "kubectl apply -f
// config/samples/" does (into the default namespace). skip names sample
// files to leave out: samples of features a previous release does not have.
func applySamples(ctx context.Context, t *testing.T, k kube, skip ...string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "config", "samples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if slices.Contains(skip, filepath.Base(f)) {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			obj := &unstructured.Unstructured{}
			if err := dec.Decode(&obj.Object); err != nil {
				break
			}
			if obj.GetKind() == "" || obj.GetKind() == "Kustomization" {
				continue
			}
			obj.SetNamespace(appNamespace)
			if err := k.c.Patch(ctx, obj, client.Apply, client.FieldOwner("kubectl"), client.ForceOwnership); err != nil { //nolint:staticcheck // Apply with unstructured is what kubectl does
				t.Fatalf("apply %s %s: %v", obj.GetKind(), obj.GetName(), err)
			}
		}
	}
}

// waitSamplesReady waits until every OAuthClient and User is Ready.
func waitSamplesReady(ctx context.Context, t *testing.T, k kube, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var pending []string
	for time.Now().Before(deadline) {
		pending = nil
		var clients authv1alpha1.OAuthClientList
		var users authv1alpha1.UserList
		if err := k.c.List(ctx, &clients, client.InNamespace(appNamespace)); err != nil {
			t.Fatal(err)
		}
		if err := k.c.List(ctx, &users, client.InNamespace(appNamespace)); err != nil {
			t.Fatal(err)
		}
		for _, o := range clients.Items {
			if !ready(o.Status.Conditions) {
				pending = append(pending, "OAuthClient "+o.Name+": "+reason(o.Status.Conditions))
			}
		}
		for _, o := range users.Items {
			if !ready(o.Status.Conditions) {
				pending = append(pending, "User "+o.Name+": "+reason(o.Status.Conditions))
			}
		}
		if len(pending) == 0 && len(clients.Items) > 0 && len(users.Items) > 0 {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("samples not Ready within %s: %s", timeout, strings.Join(pending, "; "))
}

func ready(conds []metav1.Condition) bool {
	for _, c := range conds {
		if c.Type == "Ready" {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

func reason(conds []metav1.Condition) string {
	for _, c := range conds {
		if c.Type == "Ready" {
			return c.Reason
		}
	}
	return "no Ready condition"
}

// secretData is every Secret's data in the namespaces tokensmith writes to,
// except Helm's release records (they change with every upgrade by design).
func secretData(ctx context.Context, t *testing.T, k kube) map[string]map[string][]byte {
	t.Helper()
	all := map[string]map[string][]byte{}
	for _, ns := range []string{namespace, appNamespace} {
		list, err := k.cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list.Items {
			if s.Type == "helm.sh/release.v1" {
				continue
			}
			all[ns+"/"+s.Name] = s.Data
		}
	}
	return all
}

// verifierKeptEverything reports whether a verifier document still holds
// every field it held before with the same value. A release may add fields to
// verifiers (issue 15 added the object's uid, written once on the first
// reconcile after the upgrade); changing or dropping one, a digest or a hash,
// would change a credential.
func verifierKeptEverything(before, after []byte) bool {
	var b, a map[string]any
	if json.Unmarshal(before, &b) != nil || json.Unmarshal(after, &a) != nil {
		return false
	}
	for k, v := range b {
		if !reflect.DeepEqual(a[k], v) {
			return false
		}
	}
	return true
}

func diffSecrets(before, after map[string]map[string][]byte) []string {
	var diffs []string
	for name, data := range before {
		now, ok := after[name]
		if !ok {
			diffs = append(diffs, name+" is gone")
			continue
		}
		for key, v := range data {
			if bytes.Equal(now[key], v) {
				continue
			}
			if key == credstore.DataKey && verifierKeptEverything(v, now[key]) {
				continue
			}
			diffs = append(diffs, name+" key "+key+" changed")
		}
		for key := range now {
			if _, ok := data[key]; !ok {
				diffs = append(diffs, name+" gained key "+key)
			}
		}
	}
	sort.Strings(diffs)
	return diffs
}

// podLogs returns the logs of every container of every pod in namespace.
func podLogs(ctx context.Context, t *testing.T, k kube) map[string]string {
	t.Helper()
	logs := map[string]string{}
	pods, err := k.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		for _, c := range p.Spec.Containers {
			data, err := k.cs.CoreV1().Pods(namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: c.Name}).DoRaw(ctx)
			if err != nil {
				t.Fatalf("logs of %s/%s: %v", p.Name, c.Name, err)
			}
			logs[p.Name+"/"+c.Name] = string(data)
		}
	}
	return logs
}

// dumpState logs what an operator would look at when an install fails: pods,
// their containers' states and logs, events, and the node's component logs.
func dumpState(t *testing.T, k kube) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if pods, err := k.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range pods.Items {
			t.Logf("pod %s: phase %s node %q", p.Name, p.Status.Phase, p.Spec.NodeName)
			for _, cs := range p.Status.ContainerStatuses {
				t.Logf("  container %s ready=%v restarts=%d state=%+v last=%+v", cs.Name, cs.Ready, cs.RestartCount, cs.State, cs.LastTerminationState)
				data, _ := k.cs.CoreV1().Pods(namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: cs.Name, TailLines: ptr(int64(30))}).DoRaw(ctx)
				t.Logf("  logs:\n%s", data)
			}
		}
	}
	if ev, err := k.cs.CoreV1().Events("").List(ctx, metav1.ListOptions{}); err == nil {
		for _, e := range ev.Items {
			if e.Type == corev1.EventTypeWarning {
				t.Logf("event %s %s/%s: %s %s", e.Type, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
			}
		}
	}
	t.Logf("node components:\n%s", cluster.LogTails(40))
}

func ptr[T any](v T) *T { return &v }

func clientKey(name string) client.ObjectKey {
	return client.ObjectKey{Namespace: appNamespace, Name: name}
}

func basicAuth(id, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
}
