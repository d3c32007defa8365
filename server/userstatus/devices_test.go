package userstatus

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/testenv"
	"github.com/tokensmith/tokensmith/server/index"
)

// TestStatusRecorderAgainstTheAPIServer records devices into users/status on a
// real kube-apiserver: once per device, appended to what is there, with one
// write per batch.
func TestStatusRecorderAgainstTheAPIServer(t *testing.T) {
	env, cfg := testenv.ForTest(t)
	ctx := context.Background()
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	// The recorder runs with the token server's RBAC: patch on users/status, nothing else.
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "server"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"auth.tokensmith.io"}, Resources: []string{"users/status"}, Verbs: []string{"patch"}}}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "server"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "server"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "tokensmith-server"}}}
	for _, o := range []client.Object{role, binding} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	serverUser, err := env.AddUser(envtest.User{Name: "tokensmith-server"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(serverUser.Config())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps"}}); err != nil {
		t.Fatal(err)
	}
	newUser := func(name string) *authv1alpha1.User {
		u := &authv1alpha1.User{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "apps"}, Spec: authv1alpha1.UserSpec{Username: name}}
		if err := c.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	get := func(name string) *authv1alpha1.User {
		var u authv1alpha1.User
		if err := c.Get(ctx, client.ObjectKey{Namespace: "apps", Name: name}, &u); err != nil {
			t.Fatal(err)
		}
		return &u
	}
	names := func(u *authv1alpha1.User) string {
		var out []string
		for _, d := range u.Status.Devices {
			out = append(out, d.Name)
		}
		return fmt.Sprint(out)
	}
	rec := &Devices{Client: dyn, Logger: testr.New(t)}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	t.Run("writes the first devices of a user without status", func(t *testing.T) {
		newUser("alice")
		rec.Record(index.UserRef{Namespace: "apps", Name: "alice"}, "phone", at)
		rec.Record(index.UserRef{Namespace: "apps", Name: "alice"}, "phone", at.Add(time.Minute)) // repeated login: nothing new
		rec.Flush(ctx)
		u := get("alice")
		if names(u) != "[phone]" || !u.Status.Devices[0].FirstSeen.Time.Equal(at) {
			t.Fatalf("status.devices = %+v", u.Status.Devices)
		}
	})

	t.Run("appends a new device and writes nothing for a known one", func(t *testing.T) {
		rec.Record(index.UserRef{Namespace: "apps", Name: "alice"}, "laptop", at)
		rec.Flush(ctx)
		u := get("alice")
		if names(u) != "[phone laptop]" {
			t.Fatalf("status.devices = %+v", u.Status.Devices)
		}
		rv := u.ResourceVersion
		rec.Record(index.UserRef{Namespace: "apps", Name: "alice"}, "laptop", at)
		rec.Record(index.UserRef{Namespace: "apps", Name: "alice"}, "phone", at)
		rec.Flush(ctx)
		if got := get("alice").ResourceVersion; got != rv {
			t.Fatalf("a known device caused a write: resourceVersion %s -> %s", rv, got)
		}
	})

	t.Run("keeps devices another replica wrote", func(t *testing.T) {
		other := &Devices{Client: dyn, Logger: testr.New(t)}
		other.Record(index.UserRef{Namespace: "apps", Name: "alice"}, "tablet", at)
		other.Record(index.UserRef{Namespace: "apps", Name: "alice"}, "phone", at) // this replica does not know phone is there
		other.Flush(ctx)
		if u := get("alice"); names(u) != "[phone laptop tablet]" {
			t.Fatalf("status.devices = %+v", u.Status.Devices)
		}
	})

	t.Run("keeps the rest of the status the controller wrote", func(t *testing.T) {
		u := newUser("bob")
		u.Status.PasswordSecretName = "bob-password"
		u.Status.Devices = []authv1alpha1.DeviceStatus{{Name: "desk", FirstSeen: metav1.NewTime(at)}}
		if err := c.Status().Update(ctx, u); err != nil {
			t.Fatal(err)
		}
		rec.Record(index.UserRef{Namespace: "apps", Name: "bob"}, "car", at)
		rec.Flush(ctx)
		u = get("bob")
		if names(u) != "[desk car]" || u.Status.PasswordSecretName != "bob-password" {
			t.Fatalf("status = %+v", u.Status)
		}
	})

	t.Run("gives up quietly on a deleted user", func(*testing.T) {
		rec.Record(index.UserRef{Namespace: "apps", Name: "ghost"}, "phone", at)
		rec.Flush(ctx)
	})

	t.Run("Run flushes in the background", func(t *testing.T) {
		newUser("carol")
		bg := &Devices{Client: dyn, Logger: testr.New(t), FlushInterval: 10 * time.Millisecond}
		runCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		go bg.Run(runCtx)
		bg.Record(index.UserRef{Namespace: "apps", Name: "carol"}, "watch", at)
		deadline := time.Now().Add(5 * time.Second)
		for names(get("carol")) != "[watch]" {
			if time.Now().After(deadline) {
				t.Fatal("the device was not written")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
