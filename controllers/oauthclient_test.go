package controllers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/controllers/internal/desired"
	"github.com/tokensmith/tokensmith/internal/credstore"
)

func int64p(v int64) *int64 { return &v }

func newOC(ns, name string, mutate ...func(*authv1alpha1.OAuthClient)) *authv1alpha1.OAuthClient {
	oc := &authv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, m := range mutate {
		m(oc)
	}
	return oc
}

func withSession(n int64) func(*authv1alpha1.OAuthClient) {
	return func(oc *authv1alpha1.OAuthClient) {
		oc.Spec.GrantTypes = []authv1alpha1.GrantType{authv1alpha1.GrantClientCredentials, authv1alpha1.GrantSession}
		oc.Spec.NumericID = int64p(n)
	}
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
}

// digestOK checks that the verifier's current digests are those of the Secret's values.
func digestOK(v *credstore.ClientVerifier, s *corev1.Secret) error {
	if len(v.Secrets) == 0 {
		return errors.New("verifier has no secrets")
	}
	cur := v.Secrets[0]
	if cur.ExpiresAt != nil {
		return errors.New("current secret has an expiry")
	}
	if !cur.ClientSecret.Equal(credstore.DigestOf(credstore.PurposeClientSecret, string(s.Data[credstore.KeyClientSecret]))) {
		return errors.New("verifier's client secret digest does not match the Secret")
	}
	if k, ok := s.Data[credstore.KeyAPIKey]; ok && cur.APIKey != nil {
		if !cur.APIKey.Equal(credstore.DigestOf(credstore.PurposeAPIKey, string(k))) ||
			!cur.APISecret.Equal(credstore.DigestOf(credstore.PurposeAPISecret, string(s.Data[credstore.KeyAPISecret]))) {
			return errors.New("verifier's API key digests do not match the Secret")
		}
	}
	return nil
}

// nextNumericID keeps numeric ids unique across the suite, which shares one installation.
var numericIDs int64 = 1000

func nextNumericID() int64 { numericIDs++; return numericIDs }

func TestOAuthClient(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		run  func(t *testing.T, ns string)
	}{
		{"generates credentials into a new Secret owned by the OAuthClient", func(t *testing.T, ns string) {
			n := nextNumericID()
			oc := newOC(ns, "app", withSession(n), func(oc *authv1alpha1.OAuthClient) {
				oc.Spec.Scopes = []string{"write", "read"}
				oc.Spec.AccessTokenTTL = &metav1.Duration{Duration: 10 * time.Minute}
			})
			create(t, oc)
			waitReason(t, oc, authv1alpha1.ReasonIssued)

			s := getSecret(t, ns, "app-credentials")
			if oc.Status.ClientID == "" || string(s.Data[credstore.KeyClientID]) != oc.Status.ClientID {
				t.Fatalf("CLIENT_ID %q, status.clientID %q", s.Data[credstore.KeyClientID], oc.Status.ClientID)
			}
			for _, k := range []string{credstore.KeyClientSecret, credstore.KeyAPIKey, credstore.KeyAPISecret} {
				if len(s.Data[k]) < 43 { // 256 bits of base64url
					t.Errorf("%s has %d characters, want at least 43", k, len(s.Data[k]))
				}
			}
			if string(s.Data[credstore.KeyTokenURL]) != tokenURL {
				t.Errorf("TOKEN_URL = %q", s.Data[credstore.KeyTokenURL])
			}
			if s.Labels[authv1alpha1.LabelManagedBy] != authv1alpha1.ManagedByValue {
				t.Errorf("labels = %v", s.Labels)
			}
			// envtest runs no garbage collector: the owner reference is what makes deletion work.
			if ref := metav1.GetControllerOf(s); ref == nil || ref.UID != oc.UID || ref.Kind != "OAuthClient" {
				t.Errorf("controller reference = %+v", ref)
			}
			if oc.Status.SecretName != "app-credentials" || !controllerutil.ContainsFinalizer(oc, finalizerVerifier) {
				t.Errorf("status.secretName %q, finalizers %v", oc.Status.SecretName, oc.Finalizers)
			}

			vs := getSecret(t, serverNamespace, credstore.ClientVerifierName(ns, "app"))
			if vs.Labels[credstore.LabelSecretType] != credstore.TypeClientVerifier || vs.Labels[authv1alpha1.LabelManagedBy] != authv1alpha1.ManagedByValue ||
				vs.Annotations[credstore.AnnotationOwner] != ns+"/app" {
				t.Errorf("verifier metadata: labels %v annotations %v", vs.Labels, vs.Annotations)
			}
			v, err := clientVerifier(t, oc)
			if err != nil {
				t.Fatal(err)
			}
			if err := digestOK(v, s); err != nil {
				t.Error(err)
			}
			if v.ClientID != oc.Status.ClientID || v.NumericID != n || len(v.Secrets) != 1 ||
				fmt.Sprint(v.Scopes) != "[read write]" || fmt.Sprint(v.GrantTypes) != "[client_credentials session]" ||
				time.Duration(v.AccessTokenTTL) != 10*time.Minute || v.TokenFormat != "jwt" {
				t.Errorf("verifier = %+v", v)
			}
			if containsAny(string(vs.Data[credstore.DataKey]), string(s.Data[credstore.KeyClientSecret]), string(s.Data[credstore.KeyAPISecret])) {
				t.Error("the verifier holds a plaintext secret")
			}
			eventually(t, func() error {
				var evs eventsv1.EventList
				if err := k8s.List(ctx, &evs, client.InNamespace(ns)); err != nil {
					return err
				}
				for _, e := range evs.Items {
					if containsAny(e.Note, string(s.Data[credstore.KeyClientSecret]), string(s.Data[credstore.KeyAPIKey]), string(s.Data[credstore.KeyAPISecret])) {
						t.Fatalf("event %s carries a secret value", e.Reason)
					}
					if e.Reason == eventGenerated && e.Regarding.Name == "app" {
						return nil
					}
				}
				return errors.New("no Generated event yet")
			})
		}},

		{"adopts an existing Secret, keeping its values and filling in the missing keys", func(t *testing.T, ns string) {
			pre := &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "legacy"},
				Data: map[string][]byte{
					credstore.KeyClientID:     []byte("legacy-client"),
					credstore.KeyClientSecret: []byte("a-secret-from-before-tokensmith"),
					"OTHER":                   []byte("kept"),
				},
			}
			create(t, pre)
			oc := newOC(ns, "legacy", withSession(nextNumericID()), func(oc *authv1alpha1.OAuthClient) {
				oc.Spec.SecretName = "legacy"
				oc.Annotations = map[string]string{authv1alpha1.AnnotationRotate: "predates-adoption"}
			})
			create(t, oc)
			waitReason(t, oc, authv1alpha1.ReasonIssued)

			s := getSecret(t, ns, "legacy")
			if string(s.Data[credstore.KeyClientID]) != "legacy-client" || string(s.Data[credstore.KeyClientSecret]) != "a-secret-from-before-tokensmith" ||
				string(s.Data["OTHER"]) != "kept" {
				t.Errorf("adopted values changed: %v", keysOf(s))
			}
			if len(s.Data[credstore.KeyAPIKey]) == 0 || len(s.Data[credstore.KeyAPISecret]) == 0 {
				t.Errorf("missing keys not filled in: %v", keysOf(s))
			}
			// Adopted, never owned: garbage collection must not delete a Secret
			// tokensmith did not create along with the OAuthClient.
			if oc.Status.ClientID != "legacy-client" || len(s.OwnerReferences) != 0 || s.Labels[authv1alpha1.LabelManagedBy] != authv1alpha1.ManagedByValue {
				t.Errorf("status.clientID %q, owners %v, labels %v", oc.Status.ClientID, s.OwnerReferences, s.Labels)
			}
			if s.Annotations[annotationRotated] != "predates-adoption" {
				t.Errorf("a rotate annotation older than the adoption must be recorded as handled, got %q", s.Annotations[annotationRotated])
			}
			v, err := clientVerifier(t, oc)
			if err != nil {
				t.Fatal(err)
			}
			if err := digestOK(v, s); err != nil {
				t.Error(err)
			}
		}},

		{"waits for an existingSecret, then becomes Ready when it appears, without touching it", func(t *testing.T, ns string) {
			oc := newOC(ns, "byo", func(oc *authv1alpha1.OAuthClient) { oc.Spec.ExistingSecret = true })
			create(t, oc)
			waitReason(t, oc, authv1alpha1.ReasonWaitingForSecret)
			mustNotExist(t, types.NamespacedName{Namespace: serverNamespace, Name: credstore.ClientVerifierName(ns, "byo")})
			mustNotExist(t, types.NamespacedName{Namespace: ns, Name: "byo-credentials"})

			// Incomplete: still waiting.
			provided := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "byo-credentials"},
				Data: map[string][]byte{credstore.KeyClientID: []byte("byo-client")}}
			create(t, provided)
			time.Sleep(200 * time.Millisecond)
			waitReason(t, oc, authv1alpha1.ReasonWaitingForSecret)

			provided.Data[credstore.KeyClientSecret] = []byte("provided-by-vault-0123456789")
			if err := k8s.Update(ctx, provided); err != nil {
				t.Fatal(err)
			}
			waitReason(t, oc, authv1alpha1.ReasonIssued)
			s := getSecret(t, ns, "byo-credentials")
			if s.ResourceVersion != provided.ResourceVersion {
				t.Error("tokensmith wrote to a Secret it was told not to generate")
			}
			if oc.Status.ClientID != "byo-client" {
				t.Errorf("status.clientID = %q", oc.Status.ClientID)
			}
			v, err := clientVerifier(t, oc)
			if err != nil {
				t.Fatal(err)
			}
			if err := digestOK(v, s); err != nil {
				t.Error(err)
			}
		}},

		{"keeps the previous secret during a rotation and drops it after the grace period", func(t *testing.T, ns string) {
			oc := newOC(ns, "rot", withSession(nextNumericID()), func(oc *authv1alpha1.OAuthClient) {
				oc.Spec.RotationGracePeriod = &metav1.Duration{Duration: time.Hour}
			})
			create(t, oc)
			waitReason(t, oc, authv1alpha1.ReasonIssued)
			before := getSecret(t, ns, "rot-credentials")

			mergePatch(t, oc, `{"metadata":{"annotations":{"auth.tokensmith.io/rotate":"2030-01-01"}}}`)
			rotatedAt := clock.Now()
			var after *corev1.Secret
			var v *credstore.ClientVerifier
			eventually(t, func() error {
				after = getSecret(t, ns, "rot-credentials")
				if string(after.Data[credstore.KeyClientSecret]) == string(before.Data[credstore.KeyClientSecret]) {
					return errors.New("not rotated yet")
				}
				var err error
				if v, err = clientVerifier(t, oc); err != nil {
					return err
				}
				if len(v.Secrets) != 2 {
					return fmt.Errorf("verifier has %d generations, want 2", len(v.Secrets))
				}
				return digestOK(v, after)
			})
			if string(after.Data[credstore.KeyClientID]) != string(before.Data[credstore.KeyClientID]) {
				t.Error("rotation changed the client id")
			}
			prev := v.Secrets[1]
			if !prev.ClientSecret.Equal(credstore.DigestOf(credstore.PurposeClientSecret, string(before.Data[credstore.KeyClientSecret]))) {
				t.Error("the previous generation is not the old secret")
			}
			if want := rotatedAt.Add(time.Hour); prev.ExpiresAt == nil || !prev.ExpiresAt.Equal(want) {
				t.Errorf("previous expires at %v, want %v", prev.ExpiresAt, want)
			}
			waitReason(t, oc, authv1alpha1.ReasonIssued)
			eventually(t, func() error {
				oc = getOC(t, ns, "rot")
				if oc.Status.PreviousSecretExpiresAt == nil || oc.Status.LastRotationTime == nil {
					return errors.New("rotation times not in status yet")
				}
				return nil
			})

			// Past the grace period the old digest goes; the same rotate value never rotates again.
			clock.Advance(time.Hour + time.Minute)
			poke(t, oc)
			eventually(t, func() error {
				v, err := clientVerifier(t, oc)
				if err != nil {
					return err
				}
				if len(v.Secrets) != 1 {
					return fmt.Errorf("verifier still has %d generations", len(v.Secrets))
				}
				if oc = getOC(t, ns, "rot"); oc.Status.PreviousSecretExpiresAt != nil {
					return errors.New("status.previousSecretExpiresAt not cleared")
				}
				return nil
			})
			if s := getSecret(t, ns, "rot-credentials"); string(s.Data[credstore.KeyClientSecret]) != string(after.Data[credstore.KeyClientSecret]) {
				t.Error("a handled rotate value rotated again")
			}
		}},

		{"follows a Secret edited by hand, keeping the old secret for the grace period", func(t *testing.T, ns string) {
			oc := newOC(ns, "hand")
			create(t, oc)
			waitReason(t, oc, authv1alpha1.ReasonIssued)
			s := getSecret(t, ns, "hand-credentials")
			old := string(s.Data[credstore.KeyClientSecret])
			s.Data[credstore.KeyClientSecret] = []byte("chosen-by-a-person-0123456789abcdef")
			if err := k8s.Update(ctx, s); err != nil {
				t.Fatal(err)
			}
			eventually(t, func() error {
				v, err := clientVerifier(t, oc)
				if err != nil {
					return err
				}
				if err := digestOK(v, s); err != nil {
					return err
				}
				if len(v.Secrets) != 2 || !v.Secrets[1].ClientSecret.Equal(credstore.DigestOf(credstore.PurposeClientSecret, old)) {
					return errors.New("previous secret not kept")
				}
				if want := clock.Now().Add(desired.DefaultGracePeriod); !v.Secrets[1].ExpiresAt.Equal(want) {
					return fmt.Errorf("expires %v, want %v", v.Secrets[1].ExpiresAt, want)
				}
				return nil
			})
			if got := getSecret(t, ns, "hand-credentials"); string(got.Data[credstore.KeyClientSecret]) != "chosen-by-a-person-0123456789abcdef" {
				t.Error("the controller overwrote a hand-edited secret")
			}
		}},

		{"deletes the verifier when the OAuthClient is deleted", func(t *testing.T, ns string) {
			oc := newOC(ns, "gone")
			create(t, oc)
			waitReason(t, oc, authv1alpha1.ReasonIssued)
			vkey := types.NamespacedName{Namespace: serverNamespace, Name: credstore.ClientVerifierName(ns, "gone")}
			getSecret(t, vkey.Namespace, vkey.Name)
			if err := k8s.Delete(ctx, oc); err != nil {
				t.Fatal(err)
			}
			eventually(t, func() error {
				if err := k8s.Get(ctx, client.ObjectKeyFromObject(oc), oc); !apierrors.IsNotFound(err) {
					return fmt.Errorf("OAuthClient still there: %v", err)
				}
				if err := k8s.Get(ctx, vkey, &corev1.Secret{}); !apierrors.IsNotFound(err) {
					return fmt.Errorf("verifier still there: %v", err)
				}
				return nil
			})
		}},

		{"refuses a clientID already claimed by an older OAuthClient, until the older one goes", func(t *testing.T, ns string) {
			other := newNamespace(t)
			first := newOC(ns, "first", func(oc *authv1alpha1.OAuthClient) { oc.Spec.ClientID = "shared-" + ns })
			create(t, first)
			waitReason(t, first, authv1alpha1.ReasonIssued)
			second := newOC(other, "second", func(oc *authv1alpha1.OAuthClient) { oc.Spec.ClientID = "shared-" + ns })
			create(t, second)
			waitReason(t, second, authv1alpha1.ReasonConflict)
			mustNotExist(t, types.NamespacedName{Namespace: serverNamespace, Name: credstore.ClientVerifierName(other, "second")})
			waitReason(t, first, authv1alpha1.ReasonIssued)

			if err := k8s.Delete(ctx, first); err != nil {
				t.Fatal(err)
			}
			waitReason(t, second, authv1alpha1.ReasonIssued)
		}},

		{"refuses a numericID already claimed by another OAuthClient, until the holder goes", func(t *testing.T, ns string) {
			n := nextNumericID()
			first := newOC(ns, "first", withSession(n))
			create(t, first)
			waitReason(t, first, authv1alpha1.ReasonIssued)
			second := newOC(ns, "second", withSession(n))
			create(t, second)
			waitReason(t, second, authv1alpha1.ReasonConflict)
			mustNotExist(t, types.NamespacedName{Namespace: serverNamespace, Name: credstore.ClientVerifierName(ns, "second")})

			// The numericID cannot be moved (see TestValidationRejectsBadSpecsAtApplyTime);
			// the holder giving it up clears the conflict.
			if err := k8s.Delete(ctx, first); err != nil {
				t.Fatal(err)
			}
			waitReason(t, second, authv1alpha1.ReasonIssued)
		}},

		{"a client bound to a ServiceAccount without the clientSecret method gets no secret, and loses one it had", func(t *testing.T, ns string) {
			oc := newOC(ns, "workload", func(oc *authv1alpha1.OAuthClient) {
				oc.Spec.GrantTypes = []authv1alpha1.GrantType{authv1alpha1.GrantClientCredentials}
				oc.Spec.ServiceAccountName = "workload"
			})
			create(t, oc)
			waitReason(t, oc, authv1alpha1.ReasonIssued)
			// The default methods: both, for a migration.
			v, err := clientVerifier(t, oc)
			if err != nil {
				t.Fatal(err)
			}
			s := getSecret(t, ns, "workload-credentials")
			if v.ServiceAccountName != "workload" || len(v.Secrets) != 1 || len(s.Data[credstore.KeyClientSecret]) == 0 {
				t.Fatalf("both methods: verifier %+v, Secret keys %v", v, keysOf(s))
			}
			mergePatch(t, oc, `{"spec":{"authenticationMethods":["serviceAccountToken"]}}`)
			eventually(t, func() error {
				s := getSecret(t, ns, "workload-credentials")
				v, err := clientVerifier(t, oc)
				if err != nil {
					return err
				}
				keys := keysOf(s)
				sort.Strings(keys)
				if fmt.Sprint(keys) != "[CLIENT_ID TOKEN_URL]" || len(v.Secrets) != 0 || v.ServiceAccountName != "workload" {
					return fmt.Errorf("Secret keys %v, verifier secrets %d, serviceAccountName %q", keys, len(v.Secrets), v.ServiceAccountName)
				}
				return nil
			})

			// Created that way from the start: no secret is ever generated.
			sa := newOC(ns, "sa-only", func(oc *authv1alpha1.OAuthClient) {
				oc.Spec.ServiceAccountName = "runner"
				oc.Spec.AuthenticationMethods = []authv1alpha1.AuthenticationMethod{authv1alpha1.AuthServiceAccountToken}
			})
			create(t, sa)
			waitReason(t, sa, authv1alpha1.ReasonIssued)
			keys := keysOf(getSecret(t, ns, "sa-only-credentials"))
			sort.Strings(keys)
			if fmt.Sprint(keys) != "[CLIENT_ID TOKEN_URL]" {
				t.Fatalf("Secret keys %v", keys)
			}
			if v, err := clientVerifier(t, sa); err != nil || len(v.Secrets) != 0 || v.ServiceAccountName != "runner" || v.ClientID != sa.Status.ClientID {
				t.Fatalf("verifier %+v, %v", v, err)
			}
			// A rotation of a client without a secret rotates nothing and says nothing.
			mergePatch(t, sa, `{"metadata":{"annotations":{"auth.tokensmith.io/rotate":"1"}}}`)
			eventually(t, func() error {
				s := getSecret(t, ns, "sa-only-credentials")
				if s.Annotations[annotationRotated] != "1" || len(s.Data) != 2 {
					return fmt.Errorf("rotation not handled yet, or it generated a secret: %v %v", s.Annotations, keysOf(s))
				}
				return nil
			})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newNamespace(t)) })
	}
}

// mergePatch changes obj as kubectl patch would: without a resourceVersion,
// so the controller's concurrent status writes do not make it fail.
func mergePatch(t *testing.T, obj client.Object, patch string) {
	t.Helper()
	if err := k8s.Patch(context.Background(), obj, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatal(err)
	}
}

func keysOf(s *corev1.Secret) []string {
	var keys []string
	for k := range s.Data {
		keys = append(keys, k)
	}
	return keys
}

func TestValidationRejectsBadSpecsAtApplyTime(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	cases := []struct {
		name string
		spec authv1alpha1.OAuthClientSpec
	}{
		{"an unknown grant type", authv1alpha1.OAuthClientSpec{GrantTypes: []authv1alpha1.GrantType{"implicit"}}},
		{"an access token TTL under a minute", authv1alpha1.OAuthClientSpec{AccessTokenTTL: &metav1.Duration{Duration: 30 * time.Second}}},
		{"a refresh token TTL over 8784h", authv1alpha1.OAuthClientSpec{RefreshTokenTTL: &metav1.Duration{Duration: 9000 * time.Hour}}},
		{"a negative numericID", authv1alpha1.OAuthClientSpec{NumericID: int64p(-1)}},
		{"a clientID with illegal characters", authv1alpha1.OAuthClientSpec{ClientID: "bad id!"}},
		{"the session grant without a numericID", authv1alpha1.OAuthClientSpec{GrantTypes: []authv1alpha1.GrantType{authv1alpha1.GrantSession}}},
		{"a serviceAccountName naming another namespace", authv1alpha1.OAuthClientSpec{ServiceAccountName: "other-ns:app"}},
		{"the serviceAccountToken method without a serviceAccountName", authv1alpha1.OAuthClientSpec{
			AuthenticationMethods: []authv1alpha1.AuthenticationMethod{authv1alpha1.AuthServiceAccountToken}}},
		{"an unknown authentication method", authv1alpha1.OAuthClientSpec{AuthenticationMethods: []authv1alpha1.AuthenticationMethod{"privateKeyJWT"}}},
		{"the session grant without the clientSecret method", authv1alpha1.OAuthClientSpec{ServiceAccountName: "app", NumericID: int64p(nextNumericID()),
			GrantTypes: []authv1alpha1.GrantType{authv1alpha1.GrantSession}, AuthenticationMethods: []authv1alpha1.AuthenticationMethod{authv1alpha1.AuthServiceAccountToken}}},
		{"existingSecret without the clientSecret method", authv1alpha1.OAuthClientSpec{ServiceAccountName: "app", ExistingSecret: true,
			AuthenticationMethods: []authv1alpha1.AuthenticationMethod{authv1alpha1.AuthServiceAccountToken}}},
	}
	for i, tc := range cases {
		t.Run("rejects "+tc.name, func(t *testing.T) {
			oc := &authv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("bad-%d", i)}, Spec: tc.spec}
			if err := k8s.Create(ctx, oc); !apierrors.IsInvalid(err) {
				t.Fatalf("want Invalid, got %v", err)
			}
		})
	}
	// Identifiers never move by an edit: see TestIdentifiersCannotBeTakenByEditing.
	patches := []struct {
		name  string
		obj   client.Object
		patch string
		ok    bool
	}{
		{"rejects changing the clientID once set", newOC(ns, "fixed", func(oc *authv1alpha1.OAuthClient) { oc.Spec.ClientID = "fixed-" + ns }),
			`{"spec":{"clientID":"another-id"}}`, false},
		{"rejects removing the clientID once set", newOC(ns, "fixed2", func(oc *authv1alpha1.OAuthClient) { oc.Spec.ClientID = "fixed2-" + ns }),
			`{"spec":{"clientID":null}}`, false},
		{"rejects changing the numericID", newOC(ns, "num", withSession(nextNumericID())),
			fmt.Sprintf(`{"spec":{"numericID":%d}}`, nextNumericID()), false},
		{"rejects removing the numericID", newOC(ns, "num2", func(oc *authv1alpha1.OAuthClient) { oc.Spec.NumericID = int64p(nextNumericID()) }),
			`{"spec":{"numericID":null}}`, false},
		{"accepts adding a numericID later", newOC(ns, "num3"),
			fmt.Sprintf(`{"spec":{"numericID":%d}}`, nextNumericID()), true},
		{"rejects changing the username", newUser(ns, "named", "named-"+ns),
			`{"spec":{"username":"someone-else"}}`, false},
	}
	for _, tc := range patches {
		t.Run(tc.name, func(t *testing.T) {
			create(t, tc.obj)
			err := k8s.Patch(ctx, tc.obj, client.RawPatch(types.MergePatchType, []byte(tc.patch)))
			if tc.ok && err != nil {
				t.Fatalf("want accepted, got %v", err)
			}
			if !tc.ok && !apierrors.IsInvalid(err) {
				t.Fatalf("want Invalid, got %v", err)
			}
		})
	}
	t.Run("rejects adding a clientID other than the one issued, accepts the one issued", func(t *testing.T) {
		oc := newOC(ns, "issued")
		create(t, oc)
		waitReason(t, oc, authv1alpha1.ReasonIssued)
		err := k8s.Patch(ctx, oc, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"clientID":"someone-elses-id"}}`)))
		if !apierrors.IsInvalid(err) {
			t.Fatalf("want Invalid, got %v", err)
		}
		mergePatch(t, oc, fmt.Sprintf(`{"spec":{"clientID":%q}}`, oc.Status.ClientID))
	})
}
