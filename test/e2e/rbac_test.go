package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/tokensmith/tokensmith/internal/testenv"
)

// applyChartRBAC renders the Helm chart as "helm install tokensmith" into the
// server namespace would, applies its ServiceAccounts and RBAC (with the
// aggregated tenant roles) and its ValidatingAdmissionPolicies, and returns the
// controller's and the server's ServiceAccount names. With the admission
// policies in place and no TokenPolicy, every other test proves that nothing
// changes for a single-tenant installation. The binaries then run
// impersonating those accounts, so the suite proves the chart grants enough,
// while the chart's own tests prove it grants no more.
func applyChartRBAC(ctx context.Context, c client.Client) (controllerSA, serverSA string, err error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", "", err
	}
	ch, err := loader.Load(filepath.Join(root, "charts", "tokensmith"))
	if err != nil {
		return "", "", err
	}
	rv, err := chartutil.ToRenderValues(ch, map[string]any{}, chartutil.ReleaseOptions{
		Name: "tokensmith", Namespace: serverNamespace, Revision: 1, IsInstall: true,
	}, chartutil.DefaultCapabilities)
	if err != nil {
		return "", "", err
	}
	files, err := engine.Render(ch, rv)
	if err != nil {
		return "", "", err
	}
	rbacKinds := map[string]bool{"ServiceAccount": true, "Role": true, "RoleBinding": true, "ClusterRole": true, "ClusterRoleBinding": true,
		"ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true}
	for name, content := range files {
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		for _, doc := range releaseutil.SplitManifests(content) {
			obj := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil || len(obj.Object) == 0 || !rbacKinds[obj.GetKind()] {
				continue
			}
			if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner("e2e"), client.ForceOwnership); err != nil {
				return "", "", fmt.Errorf("applying %s %s: %w", obj.GetKind(), obj.GetName(), err)
			}
			if obj.GetKind() == "ServiceAccount" {
				switch obj.GetLabels()["app.kubernetes.io/component"] {
				case "controller":
					controllerSA = obj.GetName()
				case "server":
					serverSA = obj.GetName()
				}
			}
		}
	}
	if controllerSA == "" || serverSA == "" {
		return "", "", fmt.Errorf("the chart rendered no controller or server ServiceAccount (%q, %q)", controllerSA, serverSA)
	}
	return controllerSA, serverSA, nil
}

// impersonatingKubeconfig writes a copy of the admin kubeconfig that acts as
// the ServiceAccount, as a pod running under it would.
func impersonatingKubeconfig(admin, serviceAccount string) (string, error) {
	cfg, err := clientcmd.LoadFromFile(admin)
	if err != nil {
		return "", err
	}
	for _, auth := range cfg.AuthInfos {
		auth.Impersonate = "system:serviceaccount:" + serverNamespace + ":" + serviceAccount
	}
	path := strings.TrimSuffix(admin, "kubeconfig") + serviceAccount + ".kubeconfig"
	return path, clientcmd.WriteToFile(*cfg, path)
}

// TestTheServerRunsWithTheChartsLeastPrivilege checks that the identity the
// server binary runs as in this suite is really the restricted one: the
// other tests passing then proves the chart's RBAC is enough.
func TestTheServerRunsWithTheChartsLeastPrivilege(t *testing.T) {
	cfg, err := clientcmd.BuildConfigFromFlags("", suite.serverKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var own corev1.SecretList
	if err := c.List(ctx, &own, client.InNamespace(serverNamespace)); err != nil {
		t.Fatalf("the server identity cannot list Secrets in its namespace: %v", err)
	}
	var other corev1.SecretList
	if err := c.List(ctx, &other, client.InNamespace("default")); !apierrors.IsForbidden(err) {
		t.Fatalf("the server identity listing Secrets in another namespace: err = %v, want Forbidden", err)
	}
}
