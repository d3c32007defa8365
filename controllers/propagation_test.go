package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/credstore"
)

// TestReadyWaitsForThePropagationAllowance runs a manager with an allowance
// on the real clock: a new OAuthClient and a new User are Ready=False,
// reason Propagating, until the allowance after their verifier's write has
// passed, then Ready; a reconcile that changes nothing keeps the stamp and
// Ready; a spec change is a new write, so Propagating again, then Ready.
func TestReadyWaitsForThePropagationAllowance(t *testing.T) {
	const allowance = 2 * time.Second
	// The suite's manager (no allowance) would make them Ready at once.
	stopSuiteManager()
	t.Cleanup(func() {
		if err := startSuiteManager(); err != nil {
			t.Fatal(err)
		}
	})
	mgr, err := NewManager(cfg, ManagerOptions{MetricsBindAddress: BindOff, HealthProbeBindAddress: BindOff, SkipControllerNameValidation: true})
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions()
	opts.Now, opts.PropagationAllowance = nil, allowance
	if err := Setup(mgr, opts); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = mgr.Start(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })

	ns := newNamespace(t)
	oc := &authv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
		Spec: authv1alpha1.OAuthClientSpec{GrantTypes: []authv1alpha1.GrantType{authv1alpha1.GrantClientCredentials}, Scopes: []string{"read"}}}
	u := &authv1alpha1.User{ObjectMeta: metav1.ObjectMeta{Name: "ann", Namespace: ns},
		Spec: authv1alpha1.UserSpec{Username: "ann-" + ns}}
	verifiers := map[client.Object]string{
		oc: credstore.ClientVerifierName(ns, oc.Name),
		u:  credstore.UserVerifierName(ns, u.Name),
	}
	for obj := range verifiers {
		if err := k8s.Create(context.Background(), obj); err != nil {
			t.Fatal(err)
		}
	}

	// propagate waits for each of objs to be Propagating, then for each to be
	// Ready, and checks that none was Ready sooner than the allowance after
	// its verifier's stamp. It returns the stamps.
	propagate := func(objs ...client.Object) map[client.Object]string {
		t.Helper()
		for _, obj := range objs {
			waitReason(t, obj, authv1alpha1.ReasonPropagating)
		}
		stamps := map[client.Object]string{}
		for _, obj := range objs {
			waitReason(t, obj, authv1alpha1.ReasonIssued)
			readyAt := time.Now()
			stamp := getSecret(t, serverNamespace, verifiers[obj]).Annotations[credstore.AnnotationWrittenAt]
			writtenAt, err := time.Parse(time.RFC3339Nano, stamp)
			if err != nil {
				t.Fatalf("verifier %s stamp %q: %v", verifiers[obj], stamp, err)
			}
			if early := writtenAt.Add(allowance).Sub(readyAt); early > 0 {
				t.Fatalf("%s Ready %s before the allowance after its verifier's write ended", obj.GetName(), early)
			}
			if c := meta.FindStatusCondition(conditionsOf(obj), authv1alpha1.ConditionReady); c.Status != metav1.ConditionTrue {
				t.Fatalf("%s: Ready = %+v", obj.GetName(), c)
			}
			stamps[obj] = stamp
		}
		return stamps
	}
	stamps := propagate(oc, u)

	// A reconcile that writes nothing new: same stamp, still Ready.
	for obj := range verifiers {
		poke(t, obj)
	}
	time.Sleep(allowance / 2) // long enough for the pokes' reconciles, shorter than a new allowance
	for obj, verifier := range verifiers {
		if got := getSecret(t, serverNamespace, verifier).Annotations[credstore.AnnotationWrittenAt]; got != stamps[obj] {
			t.Fatalf("%s: a reconcile that changed nothing restamped the verifier: %s -> %s", obj.GetName(), stamps[obj], got)
		}
		waitReason(t, obj, authv1alpha1.ReasonIssued)
	}

	// A change the server must load: a new write, Propagating again.
	patch := client.MergeFrom(oc.DeepCopy())
	oc.Spec.Scopes = []string{"read", "write"}
	if err := k8s.Patch(context.Background(), oc, patch); err != nil {
		t.Fatal(err)
	}
	upatch := client.MergeFrom(u.DeepCopy())
	u.Spec.Scopes = []string{"read"}
	if err := k8s.Patch(context.Background(), u, upatch); err != nil {
		t.Fatal(err)
	}
	for obj, again := range propagate(oc, u) {
		if again == stamps[obj] {
			t.Fatalf("%s: a scope change did not restamp its verifier", obj.GetName())
		}
	}
}

// conditionsOf is obj's status conditions.
func conditionsOf(obj client.Object) []metav1.Condition {
	switch o := obj.(type) {
	case *authv1alpha1.OAuthClient:
		return o.Status.Conditions
	case *authv1alpha1.User:
		return o.Status.Conditions
	}
	panic(fmt.Sprintf("conditionsOf(%T)", obj))
}
