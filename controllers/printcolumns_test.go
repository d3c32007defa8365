package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
)

// TestKubectlGetShowsWhoIsLocked reads the table kubectl prints for
// "kubectl get users" from the API server itself. The design promises that
// it answers "who is locked, and until when": a lock lies in the future, and
// a column of type date would print a future time as "<invalid>" (and a past
// one as an age, which reads like a lock still running).
func TestKubectlGetShowsWhoIsLocked(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	u := newUser(ns, "erin", "erin-"+ns)
	create(t, u)
	waitReason(t, u, authv1alpha1.ReasonIssued)

	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	patch := fmt.Sprintf(`{"status":{"lockedUntil":%q}}`, until.Format(time.RFC3339))
	if err := k8s.Status().Patch(ctx, u, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatal(err)
	}

	cells := kubectlGetRow(t, ns, "users", "erin")
	if got, want := cells["Locked Until"], until.Format(time.RFC3339); got != want {
		t.Errorf("Locked Until column = %v, want %s (all columns %v)", got, want, cells)
	}
	if cells["Username"] != "erin-"+ns || cells["Ready"] != "True" || cells["Reason"] != authv1alpha1.ReasonIssued {
		t.Errorf("columns = %v", cells)
	}
}

// kubectlGetRow asks the API server for the server-side table kubectl
// prints and returns the named row's cells by column name.
func kubectlGetRow(t *testing.T, ns, resource, name string) map[string]any {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := cs.RESTClient().Get().
		AbsPath("/apis", authv1alpha1.GroupVersion.Group, authv1alpha1.GroupVersion.Version, "namespaces", ns, resource, name).
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var table metav1.Table
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	if len(table.Rows) != 1 || len(table.Rows[0].Cells) != len(table.ColumnDefinitions) {
		t.Fatalf("table with %d rows for %s/%s: %s", len(table.Rows), ns, name, raw)
	}
	cells := map[string]any{}
	for i, c := range table.ColumnDefinitions {
		cells[c.Name] = table.Rows[0].Cells[i]
	}
	return cells
}
