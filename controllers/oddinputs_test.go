package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/controllers/internal/desired"
	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/internal/password"
)

// fakeClient is a fake API with every field index the manager registers
// (fieldIndexes): the fake fails a List by an index it was not given, so a
// missing one would stop every reconcile at its first claim lookup.
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
	b := fake.NewClientBuilder().
		WithScheme(Scheme()).
		WithObjects(objs...).
		WithStatusSubresource(&authv1alpha1.OAuthClient{}, &authv1alpha1.User{})
	for _, ix := range fieldIndexes {
		b = b.WithIndex(ix.obj, ix.field, ix.extract)
	}
	return b.Build()
}

// fakeRecorder keeps the events of a reconcile for the leak check.
func fakeRecorder() *events.FakeRecorder {
	return &events.FakeRecorder{Events: make(chan string, 100)}
}

// recorded drains rec.
func recorded(rec *events.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

var oddRequest = reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "fuzz"}}

// reconcileTwice reconciles ns/fuzz twice (the second finds the first's
// writes). Odd inputs are refused through the Ready condition, never by an
// error: an error here means the reconcile stopped before deciding anything.
func reconcileTwice(t *testing.T, r reconcile.Reconciler) {
	t.Helper()
	for i := range 2 {
		if _, err := r.Reconcile(context.Background(), oddRequest); err != nil {
			t.Fatalf("reconcile %d: %v", i+1, err)
		}
	}
}

// oddOutcome is the state a seed's reconciles must reach.
type oddOutcome struct {
	status metav1.ConditionStatus
	reason string
	// consumer: the consumer (OAuthClient) or password (User) Secret exists;
	// verifier: the verifier exists in the server namespace.
	consumer, verifier bool
}

// checkOutcome compares what the reconciles left behind with want.
func checkOutcome(t *testing.T, conds []metav1.Condition, consumer, verifier *corev1.Secret, want oddOutcome) {
	t.Helper()
	ready := meta.FindStatusCondition(conds, authv1alpha1.ConditionReady)
	switch {
	case ready == nil:
		t.Errorf("no Ready condition, want %s/%s", want.status, want.reason)
	case ready.Status != want.status || ready.Reason != want.reason:
		t.Errorf("Ready is %s/%s (%q), want %s/%s", ready.Status, ready.Reason, ready.Message, want.status, want.reason)
	}
	if (consumer != nil) != want.consumer {
		t.Errorf("the Secret in the object's namespace exists: %t, want %t", consumer != nil, want.consumer)
	}
	if (verifier != nil) != want.verifier {
		t.Errorf("the verifier exists: %t, want %t", verifier != nil, want.verifier)
	}
}

// fakeSecretOrNil is the Secret at ns/name in c, or nil.
func fakeSecretOrNil(t *testing.T, c client.Client, ns, name string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
		if client.IgnoreNotFound(err) != nil {
			t.Fatal(err)
		}
		return nil
	}
	return s
}

// leakPlaces is every text a person or the token server reads about obj: its
// status (conditions included), its events and its verifier's document. The
// Ready condition's message comes first; a seed without one has failed
// checkOutcome already.
func leakPlaces(t *testing.T, status any, conds []metav1.Condition, evs []string, verifier *corev1.Secret) map[string]string {
	t.Helper()
	places := map[string]string{}
	if ready := meta.FindStatusCondition(conds, authv1alpha1.ConditionReady); ready != nil {
		places["the Ready condition's message"] = ready.Message
	}
	b, err := json.Marshal(status)
	if err != nil {
		t.Fatal(err)
	}
	places["the status"] = string(b)
	for i, e := range evs {
		places[fmt.Sprintf("event %d", i+1)] = e
	}
	if verifier != nil {
		places["the verifier"] = string(verifier.Data[credstore.DataKey])
	}
	return places
}

// assertNoLeak fails if a credential appears in any place. Names are inputs
// too: a credential a name contains cannot be told apart, and is skipped.
// It returns how many (credential, place) pairs it checked.
func assertNoLeak(t *testing.T, places map[string]string, names string, credentials ...string) int {
	t.Helper()
	if len(places) == 0 {
		t.Fatal("the leak check has nothing to look at")
	}
	checked := 0
	for _, cred := range credentials {
		if len(cred) < 16 || strings.Contains(names, cred) {
			continue
		}
		for where, text := range places {
			checked++
			if strings.Contains(text, cred) {
				t.Errorf("a credential leaked into %s: %q", where, text)
			}
		}
	}
	return checked
}

var fuzzNow = func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }

type oauthClientSeed struct {
	grants                              uint8
	clientID                            string
	numericID                           int64
	secretName                          string
	existing                            bool
	secretClientID, secretValue, rotate string
	graceSeconds                        int64
}

func TestReconcileOAuthClientOddInputs(t *testing.T) {
	checked := 0
	for _, seed := range []struct {
		oauthClientSeed
		want oddOutcome
	}{
		// Generated credentials, no grace period.
		{oauthClientSeed{3, "", 0, "", false, "", "", "", 0},
			oddOutcome{metav1.ConditionTrue, authv1alpha1.ReasonIssued, true, true}},
		// A Secret whose CLIENT_ID is not spec.clientID: refused, left alone.
		{oauthClientSeed{8, "fixed-id", 7, "creds", false, "old-id", "old-secret", "r1", 3600},
			oddOutcome{metav1.ConditionFalse, authv1alpha1.ReasonInvalid, true, false}},
		// What the API server refuses (a negative numericID and grace period,
		// an upper-case Secret name), with a provided Secret lacking keys.
		{oauthClientSeed{15, "x", -5, "UPPER", true, "", "s", "", -1},
			oddOutcome{metav1.ConditionFalse, authv1alpha1.ReasonWaitingForSecret, true, false}},
		// Adoption of a Secret holding a client id and a secret.
		{oauthClientSeed{1, "", 0, "", false, "adopted-client", "a-long-secret-value-0123456789", "", 60},
			oddOutcome{metav1.ConditionTrue, authv1alpha1.ReasonIssued, true, true}},
	} {
		checked += reconcileOAuthClientOnce(t, seed.oauthClientSeed, seed.want)
	}
	if checked == 0 {
		t.Error("the leak check looked for no credential anywhere")
	}
}

func reconcileOAuthClientOnce(t *testing.T, seed oauthClientSeed, want oddOutcome) int {
	t.Helper()
	oc := &authv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "fuzz", UID: "uid-1"}}
	for i, g := range []authv1alpha1.GrantType{authv1alpha1.GrantClientCredentials, authv1alpha1.GrantPassword, authv1alpha1.GrantRefreshToken, authv1alpha1.GrantSession} {
		if seed.grants&(1<<i) != 0 {
			oc.Spec.GrantTypes = append(oc.Spec.GrantTypes, g)
		}
	}
	oc.Spec.ClientID, oc.Spec.SecretName, oc.Spec.ExistingSecret = seed.clientID, seed.secretName, seed.existing
	if seed.numericID != 0 {
		oc.Spec.NumericID = &seed.numericID
	}
	oc.Spec.RotationGracePeriod = &metav1.Duration{Duration: time.Duration(seed.graceSeconds) * time.Second}
	if seed.rotate != "" {
		oc.Annotations = map[string]string{authv1alpha1.AnnotationRotate: seed.rotate}
	}
	objs := []client.Object{oc}
	if seed.secretClientID != "" || seed.secretValue != "" {
		objs = append(objs, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: desired.ConsumerSecretName(oc)},
			Data:       map[string][]byte{credstore.KeyClientID: []byte(seed.secretClientID), credstore.KeyClientSecret: []byte(seed.secretValue)},
		})
	}
	c, rec := fakeClient(objs...), fakeRecorder()
	r := &oauthClientReconciler{credentialReconciler{Client: c, APIReader: c, Scheme: c.Scheme(), Recorder: rec,
		Options: Options{ServerNamespace: "server", TokenURL: "http://t", Now: fuzzNow}}}
	reconcileTwice(t, r)
	got := &authv1alpha1.OAuthClient{}
	if err := c.Get(context.Background(), oddRequest.NamespacedName, got); err != nil {
		t.Fatal(err)
	}
	consumer := fakeSecretOrNil(t, c, "ns", desired.ConsumerSecretName(oc))
	verifier := fakeSecretOrNil(t, c, "server", r.verifierKey(got).Name)
	evs := recorded(rec)
	checkOutcome(t, got.Status.Conditions, consumer, verifier, want)

	credentials := []string{seed.secretValue}
	if consumer != nil {
		for _, k := range desired.SecretKeys {
			credentials = append(credentials, string(consumer.Data[k]))
		}
	}
	return assertNoLeak(t, leakPlaces(t, got.Status, got.Status.Conditions, evs, verifier),
		seed.clientID+seed.secretName+seed.secretClientID+seed.rotate, credentials...)
}

type userSeed struct {
	username, refName, refKey, pw string
	withSecret, disabled          bool
	device                        string
}

func TestReconcileUserOddInputs(t *testing.T) {
	checked := 0
	for _, seed := range []struct {
		userSeed
		want oddOutcome
	}{
		// A "<name>-password" Secret tokensmith did not create: refused, left alone.
		{userSeed{"alice", "", "", "pw", true, false, "phone"},
			oddOutcome{metav1.ConditionFalse, authv1alpha1.ReasonForeignSecret, true, false}},
		// What the API server refuses (an empty username), and a referenced
		// Secret that does not exist.
		{userSeed{"", "ref", "", "", false, true, ""},
			oddOutcome{metav1.ConditionFalse, authv1alpha1.ReasonWaitingForSecret, false, false}},
		// A password longer than password.MaxLength.
		{userSeed{"bob", "ref", "key", strings.Repeat("x", 2000), true, true, "Unknown"},
			oddOutcome{metav1.ConditionFalse, authv1alpha1.ReasonInvalid, true, false}},
		// A generated password: the verifier holds its hash, never the password.
		{userSeed{"carol", "", "", "", false, false, "tablet"},
			oddOutcome{metav1.ConditionTrue, authv1alpha1.ReasonIssued, true, true}},
		// A password from a referenced Secret.
		{userSeed{"dave", "ref", "pw", "a-long-password-0123456789", true, false, "laptop"},
			oddOutcome{metav1.ConditionTrue, authv1alpha1.ReasonIssued, true, true}},
	} {
		checked += reconcileUserOnce(t, seed.userSeed, seed.want)
	}
	if checked == 0 {
		t.Error("the leak check looked for no credential anywhere")
	}
}

func reconcileUserOnce(t *testing.T, seed userSeed, want oddOutcome) int {
	t.Helper()
	u := &authv1alpha1.User{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "fuzz", UID: "uid-1"},
		Spec: authv1alpha1.UserSpec{Username: seed.username, Disabled: seed.disabled, DeauthorizedDevices: []string{seed.device}}}
	if seed.refName != "" {
		u.Spec.PasswordSecretRef = &authv1alpha1.SecretKeyRef{Name: seed.refName, Key: seed.refKey}
	}
	u.Status.Devices = []authv1alpha1.DeviceStatus{{Name: seed.device}}
	pwName, pwKey := desired.PasswordSecretKey(u)
	objs := []client.Object{u}
	if seed.withSecret {
		objs = append(objs, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: pwName}, Data: map[string][]byte{pwKey: []byte(seed.pw)}})
	}
	c, rec := fakeClient(objs...), fakeRecorder()
	r := &userReconciler{
		credentialReconciler: credentialReconciler{Client: c, APIReader: c, Scheme: c.Scheme(), Recorder: rec,
			Options: Options{ServerNamespace: "server", Now: fuzzNow}},
		HashParams: password.Params{MemoryKiB: 8, Iterations: 1, Parallelism: 1}}
	reconcileTwice(t, r)
	got := &authv1alpha1.User{}
	if err := c.Get(context.Background(), oddRequest.NamespacedName, got); err != nil {
		t.Fatal(err)
	}
	pwSecret := fakeSecretOrNil(t, c, "ns", pwName)
	verifier := fakeSecretOrNil(t, c, "server", r.verifierKey(got).Name)
	evs := recorded(rec)
	checkOutcome(t, got.Status.Conditions, pwSecret, verifier, want)

	credentials := []string{seed.pw}
	if pwSecret != nil {
		credentials = append(credentials, string(pwSecret.Data[pwKey]))
	}
	return assertNoLeak(t, leakPlaces(t, got.Status, got.Status.Conditions, evs, verifier),
		seed.username+seed.refName+seed.refKey+seed.device, credentials...)
}
