package chart_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// The kustomize install (config/default) is the chart's twin for people who do
// not use Helm. These tests build it with kustomize's own Go API and hold it to
// the chart's standard: the API server accepts it, its pods pass the restricted
// profile, and its RBAC grants exactly what the chart's does (which
// TestRBACLeastPrivilege proves against the API server).

func kustomizeBuild(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var objs []*unstructured.Unstructured
	for _, r := range resMap.Resources() {
		m, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs
}

func TestKustomizeDefaultAcceptedByAPIServer(t *testing.T) {
	objs := kustomizeBuild(t, "../../config/default")
	c := getCluster(t)
	ctx := context.Background()
	c.warnings.take()
	for _, o := range objs {
		if o.GetKind() != "Namespace" && o.GetKind() != "CustomResourceDefinition" && o.GetKind() != "ClusterRole" && o.GetKind() != "ClusterRoleBinding" {
			if o.GetNamespace() != releaseNamespace {
				t.Errorf("%s %s: namespace %q, want %s", o.GetKind(), o.GetName(), o.GetNamespace(), releaseNamespace)
			}
		}
		if err := c.apply(ctx, o, true); err != nil {
			t.Errorf("%s %s rejected: %v", o.GetKind(), o.GetName(), err)
		}
		for _, w := range c.warnings.take() {
			t.Errorf("%s %s: API server warning: %s", o.GetKind(), o.GetName(), w)
		}
	}
	deps := 0
	for _, o := range ofKind(objs, "Deployment") {
		deps++
		d := convert[appsv1.Deployment](t, o)
		checkRestricted(t, d.Name, &d.Spec.Template.Spec)
		checkProbesAndNamespace(t, d.Name, &d.Spec.Template.Spec)
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: d.Name + "-kustomize-pod", Namespace: releaseNamespace, Labels: d.Spec.Template.Labels},
			Spec:       d.Spec.Template.Spec,
		}
		if _, err := c.kube.CoreV1().Pods(releaseNamespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Errorf("pod of Deployment %s refused: %v", d.Name, err)
		}
	}
	if deps != 2 {
		t.Errorf("%d Deployments, want 2", deps)
	}
}

// TestKustomizeRBACMatchesChart compares every Role and ClusterRole of
// config/default with the chart's default render, and every binding's subjects.
func TestKustomizeRBACMatchesChart(t *testing.T) {
	kust := kustomizeBuild(t, "../../config/default")
	chart := render(t, "")
	for _, kind := range []string{"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "ServiceAccount"} {
		k, h := ofKind(kust, kind), ofKind(chart, kind)
		if len(k) != len(h) {
			t.Errorf("%d %ss in config/default, %d in the chart", len(k), kind, len(h))
		}
		for _, ko := range k {
			ho := find(h, kind, ko.GetName())
			if ho == nil {
				t.Errorf("%s %s is in config/default but not in the chart", kind, ko.GetName())
				continue
			}
			for _, field := range []string{"rules", "subjects", "roleRef"} {
				kv, _, _ := unstructured.NestedFieldNoCopy(ko.Object, field)
				hv, _, _ := unstructured.NestedFieldNoCopy(ho.Object, field)
				if !reflect.DeepEqual(normalize(t, kv), normalize(t, hv)) {
					t.Errorf("%s %s: %s differ\nconfig/default: %v\nchart:          %v", kind, ko.GetName(), field, kv, hv)
				}
			}
		}
	}
}

// normalize round-trips v through JSON, so that numbers and lists compare
// equal whichever YAML decoder produced them.
func normalize(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSamplesAcceptedByAPIServer dry-runs config/samples in an application
// namespace: the CRDs' schemas and CEL rules judge them.
func TestSamplesAcceptedByAPIServer(t *testing.T) {
	objs := kustomizeBuild(t, "../../config/samples")
	c := getCluster(t)
	ctx := context.Background()
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.GetKind()]++
		// The ServiceAccount of the client without a secret is the only other kind.
		if o.GetAPIVersion() != "auth.tokensmith.io/v1alpha1" && (o.GetAPIVersion() != "v1" || o.GetKind() != "ServiceAccount") {
			t.Errorf("%s %s: apiVersion %s", o.GetKind(), o.GetName(), o.GetAPIVersion())
		}
		o.SetNamespace(otherNamespace)
		if err := c.apply(ctx, o, true); err != nil {
			t.Errorf("%s %s rejected: %v", o.GetKind(), o.GetName(), err)
		}
		for _, w := range c.warnings.take() {
			t.Errorf("%s %s: API server warning: %s", o.GetKind(), o.GetName(), w)
		}
	}
	if kinds["OAuthClient"] < 3 || kinds["User"] < 1 {
		t.Errorf("samples hold %v; want an OAuthClient per dialect and a User", kinds)
	}
}

// TestKustomizeAdmissionPolicyMatchesChart: config/admission holds the
// chart's default ValidatingAdmissionPolicies and bindings. After changing
// the chart's, run this test with UPDATE_KUSTOMIZE_ADMISSION=1 to rewrite it.
func TestKustomizeAdmissionPolicyMatchesChart(t *testing.T) {
	const path = "../../config/admission/admission_policy.yaml"
	kinds := []string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
	chart := render(t, "")
	if os.Getenv("UPDATE_KUSTOMIZE_ADMISSION") != "" {
		var out bytes.Buffer
		out.WriteString("# The chart's default admission policies (charts/tokensmith/templates/admission-policy.yaml),\n" +
			"# written by TestKustomizeAdmissionPolicyMatchesChart with UPDATE_KUSTOMIZE_ADMISSION=1; do not edit.\n")
		for _, kind := range kinds {
			for _, o := range ofKind(chart, kind) {
				o = o.DeepCopy()
				o.SetLabels(nil)
				b, err := yaml.Marshal(o.Object)
				if err != nil {
					t.Fatal(err)
				}
				out.WriteString("---\n")
				out.Write(b)
			}
		}
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil { //nolint:gosec // a manifest in the repository
			t.Fatal(err)
		}
	}
	kust := kustomizeBuild(t, "../../config/default")
	for _, kind := range kinds {
		k, h := ofKind(kust, kind), ofKind(chart, kind)
		if len(k) != len(h) || len(h) == 0 {
			t.Errorf("%d %ss in config/default, %d in the chart", len(k), kind, len(h))
		}
		for _, ko := range k {
			ho := find(h, kind, ko.GetName())
			if ho == nil || !reflect.DeepEqual(normalize(t, ko.Object["spec"]), normalize(t, ho.Object["spec"])) {
				t.Errorf("%s %s differs from the chart's: run this test with UPDATE_KUSTOMIZE_ADMISSION=1", kind, ko.GetName())
			}
		}
	}
}
