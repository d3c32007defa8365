package controllers

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/internal/keyset"
)

// snapshot records every Secret and tokensmith object relevant to ns by
// resourceVersion and content: any write at all changes a resourceVersion.
func snapshot(t *testing.T, ns string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, n := range []string{ns, serverNamespace} {
		var secrets corev1.SecretList
		if err := k8s.List(ctx, &secrets, client.InNamespace(n)); err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets.Items {
			if owner := s.Annotations[credstore.AnnotationOwner]; n == serverNamespace && owner != "" && !strings.HasPrefix(owner, ns+"/") {
				continue // another test's verifier
			}
			out["Secret "+n+"/"+s.Name] = s.ResourceVersion + " " + fmt.Sprint(s.Data)
		}
	}
	var ocs authv1alpha1.OAuthClientList
	if err := k8s.List(ctx, &ocs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, o := range ocs.Items {
		out["OAuthClient "+o.Name] = o.ResourceVersion
	}
	var users authv1alpha1.UserList
	if err := k8s.List(ctx, &users, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, u := range users.Items {
		out["User "+u.Name] = u.ResourceVersion
	}
	return out
}

func diff(a, b map[string]string) []string {
	var d []string
	for k, v := range a {
		if b[k] != v {
			d = append(d, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			d = append(d, k+" (new)")
		}
	}
	return d
}

func TestIdempotence(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "adopted"},
		Data: map[string][]byte{credstore.KeyClientSecret: []byte("pre-existing-secret-value")}})
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "provided"},
		Data: map[string][]byte{credstore.KeyClientSecret: []byte("provided-secret-value")}})
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "frank-pw"},
		Data: map[string][]byte{"pw": []byte("frank's password")}})
	objs := []client.Object{
		newOC(ns, "generated", withSession(nextNumericID()), func(oc *authv1alpha1.OAuthClient) {
			oc.Spec.Scopes = []string{"z", "a", "m"}
			oc.Spec.RotationGracePeriod = &metav1.Duration{Duration: time.Hour}
			oc.Annotations = map[string]string{authv1alpha1.AnnotationRotate: "r1"}
		}),
		newOC(ns, "adopted", func(oc *authv1alpha1.OAuthClient) { oc.Spec.SecretName = "adopted" }),
		newOC(ns, "provided", func(oc *authv1alpha1.OAuthClient) { oc.Spec.SecretName = "provided"; oc.Spec.ExistingSecret = true }),
		newOC(ns, "waiting", func(oc *authv1alpha1.OAuthClient) { oc.Spec.ExistingSecret = true }),
		newUser(ns, "eve", "eve-"+ns, func(u *authv1alpha1.User) { u.Spec.Scopes = []string{"y", "x"} }),
		newUser(ns, "frank", "frank-"+ns, withPasswordSecret("frank-pw")),
	}
	for _, o := range objs {
		create(t, o)
	}
	for _, o := range objs {
		reason := authv1alpha1.ReasonIssued
		if o.GetName() == "waiting" {
			reason = authv1alpha1.ReasonWaitingForSecret
		}
		waitReason(t, o, reason)
	}
	// A rotation in flight, so the previous-digest path is idempotent too.
	mergePatch(t, objs[0], `{"metadata":{"annotations":{"auth.tokensmith.io/rotate":"r2"}}}`)
	eventually(t, func() error {
		v, err := clientVerifier(t, objs[0].(*authv1alpha1.OAuthClient))
		if err != nil || len(v.Secrets) != 2 {
			return fmt.Errorf("rotation not done: %v", err)
		}
		return nil
	})
	// Let the manager finish whatever the last writes triggered.
	settle(t, ns)
	before := snapshot(t, ns)

	var writes atomic.Int64
	c := writeCounter{Client: suiteMgr.GetClient(), writes: &writes}
	opts := testOptions()
	oc := &oauthClientReconciler{credentialReconciler{Client: c, APIReader: suiteMgr.GetAPIReader(), Scheme: suiteMgr.GetScheme(), Options: opts}}
	ur := &userReconciler{credentialReconciler: credentialReconciler{Client: c, APIReader: suiteMgr.GetAPIReader(), Scheme: suiteMgr.GetScheme(), Options: opts}}
	sk := &signingKeysReconciler{Client: c, APIReader: suiteMgr.GetAPIReader(), Options: opts}
	for i := 0; i < 100; i++ {
		for _, o := range objs {
			var r reconcile.Reconciler = oc
			if _, ok := o.(*authv1alpha1.User); ok {
				r = ur
			}
			if _, err := r.Reconcile(ctx, requestFor(o)); err != nil {
				t.Fatalf("reconcile %d of %s: %v", i, o.GetName(), err)
			}
		}
		if _, err := sk.Reconcile(ctx, sk.request()); err != nil {
			t.Fatal(err)
		}
	}
	if n := writes.Load(); n != 0 {
		t.Fatalf("100 no-op reconciles made %d writes", n)
	}
	if d := diff(before, snapshot(t, ns)); len(d) > 0 {
		t.Fatalf("no-op reconciles changed %v", d)
	}

	// A restart: a fresh manager and fresh caches reconcile everything again.
	ocBefore, userBefore := reconcileTotal("oauthclient"), reconcileTotal("user")
	stopSuiteManager()
	if err := startSuiteManager(); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() error {
		if reconcileTotal("oauthclient") < ocBefore+4 || reconcileTotal("user") < userBefore+2 {
			return fmt.Errorf("the restarted manager has not reconciled every object yet")
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond)
	if d := diff(before, snapshot(t, ns)); len(d) > 0 {
		t.Fatalf("a restart changed %v", d)
	}
}

// settle waits until nothing relevant to ns changes for a while.
func settle(t *testing.T, ns string) {
	t.Helper()
	prev := snapshot(t, ns)
	stable := 0
	for i := 0; i < 100 && stable < 4; i++ {
		time.Sleep(100 * time.Millisecond)
		cur := snapshot(t, ns)
		if len(diff(prev, cur)) == 0 {
			stable++
		} else {
			stable = 0
		}
		prev = cur
	}
}

func TestSigningKeys(t *testing.T) {
	ctx := context.Background()
	var keys, revocations *corev1.Secret
	eventually(t, func() error {
		keys, revocations = &corev1.Secret{}, &corev1.Secret{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: serverNamespace, Name: credstore.SigningKeysSecretName}, keys); err != nil {
			return err
		}
		return k8s.Get(ctx, client.ObjectKey{Namespace: serverNamespace, Name: credstore.RevocationsSecretName}, revocations)
	})
	if keys.Labels[credstore.LabelSecretType] != credstore.TypeSigningKeys || revocations.Labels[credstore.LabelSecretType] != credstore.TypeRevocations ||
		revocations.Labels[authv1alpha1.LabelManagedBy] != authv1alpha1.ManagedByValue {
		t.Fatalf("labels: keys %v revocations %v", keys.Labels, revocations.Labels)
	}
	var set keyset.Set
	if err := credstore.Decode(keys.Data[credstore.DataKey], &set); err != nil {
		t.Fatal(err)
	}
	if err := set.Validate(); err != nil || len(set.Keys) != 3 {
		t.Fatalf("key set: %d keys, %v", len(set.Keys), err)
	}
	var rev credstore.Revocations
	if err := credstore.Decode(revocations.Data[credstore.DataKey], &rev); err != nil || rev.Entries == nil {
		t.Fatalf("revocations document %q: %v", revocations.Data[credstore.DataKey], err)
	}

	// The token server owns the revocations Secret once it exists.
	revocations.Data[credstore.DataKey] = []byte(`{"entries":[{"id":"x","expiresAt":"2031-01-01T00:00:00Z"}]}`)
	if err := k8s.Update(ctx, revocations); err != nil {
		t.Fatal(err)
	}

	clock.Advance(DefaultKeyRotationPeriod + time.Hour)
	poke(t, keys)
	eventually(t, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(keys), keys); err != nil {
			return err
		}
		var rotated keyset.Set
		if err := credstore.Decode(keys.Data[credstore.DataKey], &rotated); err != nil {
			return err
		}
		retired := 0
		for _, k := range rotated.Keys {
			if k.RetiredAt != nil {
				retired++
			}
		}
		if len(rotated.Keys) != 6 || retired != 3 {
			return fmt.Errorf("%d keys, %d retired; want 6 and 3", len(rotated.Keys), retired)
		}
		return nil
	})
	got := &corev1.Secret{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(revocations), got); err != nil {
		t.Fatal(err)
	}
	if got.ResourceVersion != revocations.ResourceVersion {
		t.Error("the controller wrote to the revocations Secret the token server owns")
	}
}
