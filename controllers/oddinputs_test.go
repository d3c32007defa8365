package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/controllers/internal/desired"
	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/internal/password"
)

// fakeClient is a fake API with the field indexes the reconcilers list by.
// The tests in this file look for panics and leaks on inputs the API
// server's validation would have refused, which envtest cannot produce.
//
// They were fuzz targets once. Fuzzing instruments every package a test
// binary links, and this one links client-go and controller-runtime: minutes
// of compiling before the first input. What they fuzzed is pure (the client
// id, digests, rotation arithmetic and verifier documents), so it is fuzzed
// in controllers/internal/desired, whose test binary is small; these keep
// their seeds as ordinary tests of the whole reconcile.
func fakeClient(objs ...client.Object) client.Client {
	return fake.NewClientBuilder().
		WithScheme(Scheme()).
		WithObjects(objs...).
		WithStatusSubresource(&authv1alpha1.OAuthClient{}, &authv1alpha1.User{}).
		WithIndex(&authv1alpha1.OAuthClient{}, indexClaim, func(o client.Object) []string {
			return oauthClientClaims(o.(*authv1alpha1.OAuthClient))
		}).
		WithIndex(&authv1alpha1.User{}, indexUsername, func(o client.Object) []string {
			return []string{o.(*authv1alpha1.User).Spec.Username}
		}).
		Build()
}

// reconcileTwice reconciles ns/fuzz twice (the second finds the first's
// writes) and returns the request. Errors are expected on odd inputs; what
// matters is what is left behind.
func reconcileTwice(r reconcile.Reconciler) reconcile.Request {
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "fuzz"}}
	for range 2 {
		_, _ = r.Reconcile(context.Background(), req)
	}
	return req
}

var fuzzNow = func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }

func TestReconcileOAuthClientOddInputs(t *testing.T) {
	for _, seed := range []struct {
		grants                              uint8
		clientID                            string
		numericID                           int64
		secretName                          string
		existing                            bool
		secretClientID, secretValue, rotate string
		graceSeconds                        int64
	}{
		{3, "", 0, "", false, "", "", "", 0},
		{8, "fixed-id", 7, "creds", false, "old-id", "old-secret", "r1", 3600},
		{15, "x", -5, "UPPER", true, "", "s", "", -1},
		{1, "", 0, "", false, "adopted-client", "a-long-secret-value-0123456789", "", 60},
	} {
		reconcileOAuthClientOnce(t, seed.grants, seed.clientID, seed.numericID, seed.secretName, seed.existing,
			seed.secretClientID, seed.secretValue, seed.rotate, seed.graceSeconds)
	}
}

func reconcileOAuthClientOnce(t *testing.T, grants uint8, clientID string, numericID int64, secretName string, existing bool,
	secretClientID, secretValue, rotate string, graceSeconds int64) {
	t.Helper()
	oc := &authv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "fuzz", UID: "uid-1"}}
	for i, g := range []authv1alpha1.GrantType{authv1alpha1.GrantClientCredentials, authv1alpha1.GrantPassword, authv1alpha1.GrantRefreshToken, authv1alpha1.GrantSession} {
		if grants&(1<<i) != 0 {
			oc.Spec.GrantTypes = append(oc.Spec.GrantTypes, g)
		}
	}
	oc.Spec.ClientID, oc.Spec.SecretName, oc.Spec.ExistingSecret = clientID, secretName, existing
	if numericID != 0 {
		oc.Spec.NumericID = &numericID
	}
	oc.Spec.RotationGracePeriod = &metav1.Duration{Duration: time.Duration(graceSeconds) * time.Second}
	if rotate != "" {
		oc.Annotations = map[string]string{authv1alpha1.AnnotationRotate: rotate}
	}
	objs := []client.Object{oc}
	if secretClientID != "" || secretValue != "" {
		objs = append(objs, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: desired.ConsumerSecretName(oc)},
			Data:       map[string][]byte{credstore.KeyClientID: []byte(secretClientID), credstore.KeyClientSecret: []byte(secretValue)},
		})
	}
	c := fakeClient(objs...)
	req := reconcileTwice(&oauthClientReconciler{credentialReconciler{Client: c, APIReader: c, Scheme: c.Scheme(),
		Options: Options{ServerNamespace: "server", TokenURL: "http://t", Now: fuzzNow}}})
	got := &authv1alpha1.OAuthClient{}
	if err := c.Get(context.Background(), req.NamespacedName, got); err != nil {
		return
	}
	s := &corev1.Secret{}
	_ = c.Get(context.Background(), types.NamespacedName{Namespace: "ns", Name: desired.ConsumerSecretName(oc)}, s)
	for _, cond := range got.Status.Conditions {
		// Names are fuzz inputs too: only a value no name contains can be told apart.
		if len(secretValue) >= 16 && !containsAny(clientID+secretName+secretClientID+rotate, secretValue) &&
			containsAny(cond.Message, secretValue, string(s.Data[credstore.KeyClientSecret])) {
			t.Fatalf("a secret value leaked into the condition message %q", cond.Message)
		}
	}
}

func TestReconcileUserOddInputs(t *testing.T) {
	for _, seed := range []struct {
		username, refName, refKey, pw string
		withSecret, disabled          bool
		device                        string
	}{
		{"alice", "", "", "pw", true, false, "phone"},
		{"", "ref", "", "", false, true, ""},
		{"bob", "ref", "key", strings.Repeat("x", 2000), true, true, "Unknown"},
	} {
		reconcileUserOnce(t, seed.username, seed.refName, seed.refKey, seed.pw, seed.withSecret, seed.disabled, seed.device)
	}
}

func reconcileUserOnce(t *testing.T, username, refName, refKey, pw string, withSecret, disabled bool, device string) {
	t.Helper()
	u := &authv1alpha1.User{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "fuzz", UID: "uid-1"},
		Spec: authv1alpha1.UserSpec{Username: username, Disabled: disabled, DeauthorizedDevices: []string{device}}}
	if refName != "" {
		u.Spec.PasswordSecretRef = &authv1alpha1.SecretKeyRef{Name: refName, Key: refKey}
	}
	u.Status.Devices = []authv1alpha1.DeviceStatus{{Name: device}}
	objs := []client.Object{u}
	if withSecret {
		name, key := desired.PasswordSecretKey(u)
		objs = append(objs, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Data: map[string][]byte{key: []byte(pw)}})
	}
	c := fakeClient(objs...)
	req := reconcileTwice(&userReconciler{
		credentialReconciler: credentialReconciler{Client: c, APIReader: c, Scheme: c.Scheme(), Options: Options{ServerNamespace: "server", Now: fuzzNow}},
		HashParams:           password.Params{MemoryKiB: 8, Iterations: 1, Parallelism: 1}})
	got := &authv1alpha1.User{}
	if err := c.Get(context.Background(), req.NamespacedName, got); err != nil {
		return
	}
	for _, cond := range got.Status.Conditions {
		if len(pw) >= 16 && !strings.Contains(username+refName+refKey+device, pw) && strings.Contains(cond.Message, pw) {
			t.Fatalf("the password leaked into the condition message %q", cond.Message)
		}
	}
}
