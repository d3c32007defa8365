package desired

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/credstore"
)

// FuzzOAuthClient fuzzes everything the OAuthClient reconciler derives from a
// spec and a consumer Secret the API server's validation never checked: the
// client id, the digests, the rotation arithmetic and the verifier document.
// This package's test binary links no client-go or controller-runtime, so
// the fuzzer instruments little; the reconcile around it keeps its seed
// tests in package controllers.
func FuzzOAuthClient(f *testing.F) {
	f.Add(uint8(3), "", "", int64(0), "", "", "", int64(0), int64(0))
	f.Add(uint8(8), "fixed-id", "", int64(7), "old-id", "old-secret", "key", int64(3600), int64(10))
	f.Add(uint8(15), "x", "kept", int64(-5), "UPPER", "s", "", int64(-1), int64(-7200))
	f.Add(uint8(0), "", "", int64(0), "adopted-client", strings.Repeat("v", 5000), "", int64(0), int64(1))
	f.Fuzz(func(t *testing.T, grants uint8, specID, statusID string, numericID int64, secretID, secretValue, apiKey string,
		graceSeconds, elapsedSeconds int64) {
		oc := &authv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "fuzz", UID: "uid-1"}}
		for i, g := range []authv1alpha1.GrantType{authv1alpha1.GrantClientCredentials, authv1alpha1.GrantPassword, authv1alpha1.GrantRefreshToken, authv1alpha1.GrantSession} {
			if grants&(1<<i) != 0 {
				oc.Spec.GrantTypes = append(oc.Spec.GrantTypes, g)
			}
		}
		oc.Spec.ClientID, oc.Status.ClientID = specID, statusID
		if numericID != 0 {
			oc.Spec.NumericID = &numericID
		}
		oc.Spec.RotationGracePeriod = &metav1.Duration{Duration: time.Duration(graceSeconds) * time.Second}
		data := map[string][]byte{credstore.KeyClientID: []byte(secretID), credstore.KeyClientSecret: []byte(secretValue),
			credstore.KeyAPIKey: []byte(apiKey), credstore.KeyAPISecret: []byte(apiKey)}
		// Names are fuzz inputs too: only a value no name contains can be told apart.
		leaks := func(s string) bool {
			v := secretValue
			return len(v) >= 16 && !strings.Contains(specID+statusID+secretID+apiKey, v) && strings.Contains(s, v)
		}

		id, problem := ResolveClientID(oc, "creds", data)
		if leaks(problem) {
			t.Fatalf("a secret value leaked into %q", problem)
		}
		if problem == "" && id == "" {
			t.Fatal("no client id and no problem")
		}
		if want := ClaimedClientID(oc); want != "" && id != want {
			t.Fatalf("client id %q, but spec or status says %q", id, want)
		}
		if missing := MissingProvidedKeys(oc, data, true); leaks(missing) {
			t.Fatalf("a secret value leaked into %q", missing)
		}

		current, problem := CurrentDigests(oc, "creds", data)
		if leaks(problem) {
			t.Fatalf("a secret value leaked into %q", problem)
		}
		if problem != "" {
			return
		}
		clock := newClock()
		grace := GracePeriod(oc)
		if grace < 0 {
			t.Fatalf("negative grace period %v", grace)
		}
		secrets, _ := Digests([]credstore.SecretDigests{digests("before")}, current, grace, clock.Now())
		clock.Advance(time.Duration(elapsedSeconds) * time.Second)
		secrets, _ = Digests(secrets, current, grace, clock.Now())
		if len(secrets) > 1+MaxPreviousSecrets {
			t.Fatalf("%d digests kept", len(secrets))
		}
		requeue, latest := Expiry(secrets, clock.Now())
		if (len(secrets) > 1) != (latest != nil) || len(secrets) > 1 && requeue <= time.Second-time.Nanosecond {
			t.Fatalf("requeue %v, latest %v for %d digests", requeue, latest, len(secrets))
		}
		doc, err := credstore.Encode(ClientVerifier(oc, id, secrets))
		if err != nil {
			t.Fatal(err)
		}
		again, _ := credstore.Encode(ClientVerifier(oc.DeepCopy(), id, secrets))
		if !bytes.Equal(doc, again) {
			t.Fatal("the verifier is not deterministic")
		}
		if leaks(string(doc)) {
			t.Fatal("a secret value leaked into the verifier")
		}
	})
}

// FuzzUser fuzzes the User verifier document and the password Secret's key.
func FuzzUser(f *testing.F) {
	f.Add("alice", "", "", "phone", "laptop", false)
	f.Add("", "ref", "", "", "", true)
	f.Add("bob", "ref", "key", "b", "a", true)
	f.Fuzz(func(t *testing.T, username, refName, refKey, device, deauthorized string, disabled bool) {
		u := &authv1alpha1.User{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "fuzz", UID: "uid-1"},
			Spec: authv1alpha1.UserSpec{Username: username, Disabled: disabled, DeauthorizedDevices: []string{deauthorized, device}}}
		if refName != "" {
			u.Spec.PasswordSecretRef = &authv1alpha1.SecretKeyRef{Name: refName, Key: refKey}
		}
		u.Status.Devices = []authv1alpha1.DeviceStatus{{Name: device}, {Name: deauthorized}}
		name, key := PasswordSecretKey(u)
		if name == "" && refName == "" || key == "" {
			t.Fatalf("PasswordSecretKey = %q, %q", name, key)
		}
		v := UserVerifier(u, "hash", "src", 1)
		if !slices.IsSorted(v.KnownDevices) || !slices.IsSorted(v.DeauthorizedDevices) {
			t.Fatalf("unsorted lists: %+v", v)
		}
		doc, err := credstore.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := credstore.Encode(UserVerifier(u.DeepCopy(), "hash", "src", 1))
		if !bytes.Equal(doc, again) {
			t.Fatal("the verifier is not deterministic")
		}
	})
}
