package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/credstore"
)

// victimIntact checks, for a while, that the victim is still Ready and that
// its verifier is the very Secret it was (same UID and resourceVersion): the
// attack did not delete, replace or rewrite it.
func victimIntact(t *testing.T, victim client.Object, verifier *corev1.Secret) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		now := getSecretOrNil(t, verifier.Namespace, verifier.Name)
		if now == nil || now.UID != verifier.UID || now.ResourceVersion != verifier.ResourceVersion {
			t.Fatalf("the victim's verifier was deleted or rewritten by the attack")
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitReason(t, victim, authv1alpha1.ReasonIssued)
}

func getSecretOrNil(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, s)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// neverNamesTheHolder checks that the attacker's Conflict condition and
// events say which identifier is taken without naming who holds it.
func neverNamesTheHolder(t *testing.T, attacker client.Object, holder client.Object) {
	t.Helper()
	var conds []metav1.Condition
	switch o := attacker.(type) {
	case *authv1alpha1.OAuthClient:
		conds = o.Status.Conditions
	case *authv1alpha1.User:
		conds = o.Status.Conditions
	}
	c := meta.FindStatusCondition(conds, authv1alpha1.ConditionReady)
	if c == nil || !strings.Contains(c.Message, "already taken") {
		t.Fatalf("Conflict condition: %+v", c)
	}
	if strings.Contains(c.Message, holder.GetNamespace()) || strings.Contains(c.Message, holder.GetName()+" ") {
		t.Fatalf("the Conflict message names the holder: %q", c.Message)
	}
	eventually(t, func() error {
		var evs eventsv1.EventList
		if err := k8s.List(context.Background(), &evs, client.InNamespace(attacker.GetNamespace())); err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Reason != eventConflict || e.Regarding.Name != attacker.GetName() {
				continue
			}
			if strings.Contains(e.Note, holder.GetNamespace()) {
				t.Fatalf("the Conflict event names the holder: %q", e.Note)
			}
			return nil
		}
		return errors.New("no Conflict event yet")
	})
}

// TestIdentifiersCannotBeTakenByEditing replays issue 15's finding 1: an older
// object in namespace "evil" takes a younger object's username, client id or
// numeric id by editing its own spec (or providing a Secret). Claims go to
// whoever claimed first; the victim keeps its identifier and its verifier,
// and the attacker learns nothing about who holds it.
func TestIdentifiersCannotBeTakenByEditing(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		run  func(t *testing.T, evil, victimNS string)
	}{
		{"an older User cannot change its username to a younger User's", func(t *testing.T, evil, victimNS string) {
			mallory := newUser(evil, "mallory", "mallory-"+evil)
			create(t, mallory)
			waitReason(t, mallory, authv1alpha1.ReasonIssued)
			time.Sleep(1100 * time.Millisecond) // strictly older, to the second
			bob := newUser(victimNS, "bob", "bob@corp.test-"+victimNS)
			create(t, bob)
			waitReason(t, bob, authv1alpha1.ReasonIssued)
			verifier := getSecret(t, serverNamespace, credstore.UserVerifierName(victimNS, "bob"))

			err := k8s.Patch(ctx, mallory, client.RawPatch(types.MergePatchType, []byte(fmt.Sprintf(`{"spec":{"username":%q}}`, bob.Spec.Username))))
			if !apierrors.IsInvalid(err) {
				t.Fatalf("changing the username: want Invalid, got %v", err)
			}
			victimIntact(t, bob, verifier)
			v, err := userVerifier(t, mallory)
			if err != nil || v.Username != "mallory-"+evil {
				t.Fatalf("the attacker's verifier: %+v, %v", v, err)
			}
		}},

		{"an older OAuthClient cannot add a younger one's clientID to its spec", func(t *testing.T, evil, victimNS string) {
			thief := newOC(evil, "thief", func(oc *authv1alpha1.OAuthClient) { oc.Spec.Scopes = []string{"admin"} })
			create(t, thief)
			waitReason(t, thief, authv1alpha1.ReasonIssued)
			time.Sleep(1100 * time.Millisecond)
			billing := newOC(victimNS, "billing")
			create(t, billing)
			waitReason(t, billing, authv1alpha1.ReasonIssued)
			verifier := getSecret(t, serverNamespace, credstore.ClientVerifierName(victimNS, "billing"))

			// A fresh Secret name, so no CLIENT_ID stands in the way.
			patch := fmt.Sprintf(`{"spec":{"clientID":%q,"secretName":"fresh"}}`, billing.Status.ClientID)
			if err := k8s.Patch(ctx, thief, client.RawPatch(types.MergePatchType, []byte(patch))); !apierrors.IsInvalid(err) {
				t.Fatalf("adding another client's id: want Invalid, got %v", err)
			}
			victimIntact(t, billing, verifier)
		}},

		{"an older OAuthClient cannot take a client id through a Secret it provides", func(t *testing.T, evil, victimNS string) {
			// Older, waiting for its Secret, so it holds no client id yet.
			thief := newOC(evil, "thief", func(oc *authv1alpha1.OAuthClient) { oc.Spec.ExistingSecret = true })
			create(t, thief)
			waitReason(t, thief, authv1alpha1.ReasonWaitingForSecret)
			time.Sleep(1100 * time.Millisecond)
			billing := newOC(victimNS, "billing")
			create(t, billing)
			waitReason(t, billing, authv1alpha1.ReasonIssued)
			verifier := getSecret(t, serverNamespace, credstore.ClientVerifierName(victimNS, "billing"))

			create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: evil, Name: "thief-credentials"}, Data: map[string][]byte{
				credstore.KeyClientID:     []byte(billing.Status.ClientID),
				credstore.KeyClientSecret: []byte("the-attackers-own-secret-0123456789"),
			}})
			waitReason(t, thief, authv1alpha1.ReasonConflict)
			mustNotExist(t, types.NamespacedName{Namespace: serverNamespace, Name: credstore.ClientVerifierName(evil, "thief")})
			victimIntact(t, billing, verifier)
			neverNamesTheHolder(t, thief, billing)
		}},

		{"an older OAuthClient cannot add a younger one's numericID", func(t *testing.T, evil, victimNS string) {
			thief := newOC(evil, "thief")
			create(t, thief)
			waitReason(t, thief, authv1alpha1.ReasonIssued)
			time.Sleep(1100 * time.Millisecond)
			n := nextNumericID()
			billing := newOC(victimNS, "billing", withSession(n))
			create(t, billing)
			waitReason(t, billing, authv1alpha1.ReasonIssued)
			verifier := getSecret(t, serverNamespace, credstore.ClientVerifierName(victimNS, "billing"))

			mergePatch(t, thief, fmt.Sprintf(`{"spec":{"grantTypes":["client_credentials","session"],"numericID":%d}}`, n))
			waitReason(t, thief, authv1alpha1.ReasonConflict)
			mustNotExist(t, types.NamespacedName{Namespace: serverNamespace, Name: credstore.ClientVerifierName(evil, "thief")})
			victimIntact(t, billing, verifier)
			neverNamesTheHolder(t, thief, billing)
			if v, err := clientVerifier(t, billing); err != nil || v.NumericID != n {
				t.Fatalf("the victim's verifier: %+v, %v", v, err)
			}
		}},

		{"an older OAuthClient cannot change its numericID to a younger one's", func(t *testing.T, evil, victimNS string) {
			thief := newOC(evil, "thief", withSession(nextNumericID()))
			create(t, thief)
			waitReason(t, thief, authv1alpha1.ReasonIssued)
			time.Sleep(1100 * time.Millisecond)
			n := nextNumericID()
			billing := newOC(victimNS, "billing", withSession(n))
			create(t, billing)
			waitReason(t, billing, authv1alpha1.ReasonIssued)
			verifier := getSecret(t, serverNamespace, credstore.ClientVerifierName(victimNS, "billing"))

			err := k8s.Patch(ctx, thief, client.RawPatch(types.MergePatchType, []byte(fmt.Sprintf(`{"spec":{"numericID":%d}}`, n))))
			if !apierrors.IsInvalid(err) {
				t.Fatalf("changing the numericID: want Invalid, got %v", err)
			}
			victimIntact(t, billing, verifier)
		}},

		{"a younger User claiming a taken username is refused without learning who holds it", func(t *testing.T, evil, victimNS string) {
			bob := newUser(victimNS, "bob", "bob@corp.test-"+victimNS)
			create(t, bob)
			waitReason(t, bob, authv1alpha1.ReasonIssued)
			verifier := getSecret(t, serverNamespace, credstore.UserVerifierName(victimNS, "bob"))
			mallory := newUser(evil, "mallory", bob.Spec.Username)
			create(t, mallory)
			waitReason(t, mallory, authv1alpha1.ReasonConflict)
			mustNotExist(t, types.NamespacedName{Namespace: serverNamespace, Name: credstore.UserVerifierName(evil, "mallory")})
			victimIntact(t, bob, verifier)
			neverNamesTheHolder(t, mallory, bob)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newNamespace(t), newNamespace(t)) })
	}
}

// TestAClaimOfAnObjectDeletedWithoutItsFinalizerIsFreed: a claim record whose
// holder is gone (someone removed the finalizer, so the holder never gave it
// up) goes to the next claimant instead of blocking the identifier forever.
func TestAClaimOfAnObjectDeletedWithoutItsFinalizerIsFreed(t *testing.T) {
	ctx := context.Background()
	ns, other := newNamespace(t), newNamespace(t)
	first := newUser(ns, "first", "shared-"+ns)
	create(t, first)
	waitReason(t, first, authv1alpha1.ReasonIssued)
	second := newUser(other, "second", "shared-"+ns)
	create(t, second)
	waitReason(t, second, authv1alpha1.ReasonConflict)

	mergePatch(t, first, `{"metadata":{"finalizers":null}}`)
	if err := k8s.Delete(ctx, first); err != nil {
		t.Fatal(err)
	}
	waitReason(t, second, authv1alpha1.ReasonIssued)
	rec := getSecret(t, serverNamespace, claimRecordName(claimKindUser, claimUsername("shared-"+ns)))
	if rec.Labels[labelClaimOwner] != string(second.UID) {
		t.Fatalf("the claim record names %s, want the second User", rec.Labels[labelClaimOwner])
	}
}

// TestClaimRecordsFollowTheirHolder: a holder's records carry no secret-type
// label (the token server never reads them), and deleting the holder deletes them.
func TestClaimRecordsFollowTheirHolder(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	n := nextNumericID()
	oc := newOC(ns, "app", withSession(n))
	create(t, oc)
	waitReason(t, oc, authv1alpha1.ReasonIssued)
	keys := []types.NamespacedName{
		{Namespace: serverNamespace, Name: claimRecordName(claimKindClient, claimClientID(oc.Status.ClientID))},
		{Namespace: serverNamespace, Name: claimRecordName(claimKindClient, claimNumericID(n))},
	}
	// A generated client id is claimed by the reconcile after the one that
	// issued it (the holder's verifier guards it meanwhile), so wait for it.
	eventually(t, func() error {
		for _, k := range keys {
			rec := &corev1.Secret{}
			if err := k8s.Get(ctx, k, rec); err != nil {
				return err
			}
			if rec.Labels[credstore.LabelSecretType] != "" || rec.Labels[labelClaimOwner] != string(oc.UID) || len(rec.Data) != 0 {
				t.Fatalf("claim record %s: labels %v, %d data keys", k.Name, rec.Labels, len(rec.Data))
			}
		}
		return nil
	})
	if err := k8s.Delete(ctx, oc); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() error {
		for _, k := range keys {
			if err := k8s.Get(ctx, k, &corev1.Secret{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("claim record %s: %v", k.Name, err)
			}
		}
		return nil
	})
}

// TestAClaimRecordDeletedByHandStaysWithTheHolder: a holder whose claim record
// is missing (deleted by hand, or written before claim records existed: an
// upgrade) keeps its identifier, because it still serves it from its
// verifier; a claimant waiting in Conflict, woken by the same deletion, never
// takes it.
func TestAClaimRecordDeletedByHandStaysWithTheHolder(t *testing.T) {
	ns, other := newNamespace(t), newNamespace(t)
	holder := newUser(ns, "holder", "kept-"+ns)
	create(t, holder)
	waitReason(t, holder, authv1alpha1.ReasonIssued)
	waiting := newUser(other, "waiting", "kept-"+ns)
	create(t, waiting)
	waitReason(t, waiting, authv1alpha1.ReasonConflict)
	verifier := getSecret(t, serverNamespace, credstore.UserVerifierName(ns, "holder"))
	recKey := types.NamespacedName{Namespace: serverNamespace, Name: claimRecordName(claimKindUser, claimUsername("kept-"+ns))}

	for i := 0; i < 5; i++ {
		rec := getSecret(t, recKey.Namespace, recKey.Name)
		if err := k8s.Delete(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		eventually(t, func() error {
			rec := getSecretOrNil(t, recKey.Namespace, recKey.Name)
			if rec == nil {
				return errors.New("claim record not taken again yet")
			}
			if rec.Labels[labelClaimOwner] != string(holder.UID) {
				t.Fatalf("the waiting User took the claim")
			}
			return nil
		})
	}
	victimIntact(t, holder, verifier)
	waitReason(t, waiting, authv1alpha1.ReasonConflict)
}

// TestClaimsAreGivenUpThroughTheHolderIndex: the records an object holds are
// found through the indexClaimHolder field index of the cache (not a label
// selector over the whole server namespace). A client denied its numericID
// by a tightened TokenPolicy gives that record up and keeps its client id's;
// another client then takes the numericID; deleting the first gives up the
// rest.
func TestClaimsAreGivenUpThroughTheHolderIndex(t *testing.T) {
	ctx := context.Background()
	ns, other := policyNamespace(t, "holder-index"), newNamespace(t)
	withPolicies(t, teamPolicy("holder-index", authv1alpha1.TokenPolicySpec{NumericIDs: &authv1alpha1.NumericIDRange{Min: 1, Max: 9007199254740991}}))
	n := nextNumericID()
	first := newOC(ns, "first", withSession(n))
	create(t, first)
	waitReason(t, first, authv1alpha1.ReasonIssued)
	idKey := types.NamespacedName{Namespace: serverNamespace, Name: claimRecordName(claimKindClient, claimClientID(first.Status.ClientID))}
	numKey := types.NamespacedName{Namespace: serverNamespace, Name: claimRecordName(claimKindClient, claimNumericID(n))}
	heldBy := func(k types.NamespacedName, o client.Object) error {
		rec := getSecretOrNil(t, k.Namespace, k.Name)
		if rec == nil || rec.Labels[labelClaimOwner] != string(o.GetUID()) {
			return fmt.Errorf("claim record %s is not held by %s", k.Name, o.GetName())
		}
		return nil
	}
	eventually(t, func() error { return errors.Join(heldBy(idKey, first), heldBy(numKey, first)) })

	// Tighten: the namespace may no longer hold numericID n.
	p := &authv1alpha1.TokenPolicy{}
	if err := k8s.Get(ctx, types.NamespacedName{Name: "team-holder-index"}, p); err != nil {
		t.Fatal(err)
	}
	p.Spec.NumericIDs.Max = n - 1
	if err := k8s.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitReason(t, first, authv1alpha1.ReasonPolicyDenied)
	eventually(t, func() error {
		if getSecretOrNil(t, numKey.Namespace, numKey.Name) != nil {
			return errors.New("the denied numericID's claim record is still there")
		}
		return heldBy(idKey, first)
	})

	second := newOC(other, "second", withSession(n))
	create(t, second)
	waitReason(t, second, authv1alpha1.ReasonIssued)
	eventually(t, func() error { return heldBy(numKey, second) })

	deleteObj(t, first)
	eventually(t, func() error {
		if getSecretOrNil(t, idKey.Namespace, idKey.Name) != nil {
			return errors.New("the deleted client's claim record is still there")
		}
		return nil
	})
	if err := heldBy(numKey, second); err != nil {
		t.Fatal(err)
	}
}

// cacheBehind is a cache that has not seen any claim record yet: List finds
// nothing, everything else is the client's.
type cacheBehind struct{ client.Client }

func (cacheBehind) List(context.Context, client.ObjectList, ...client.ListOption) error { return nil }

// TestReleaseAllGivesUpARecordTheCacheHasNotSeen: a holder deleted a moment
// after taking a claim (before the cache shows the record) still gives that
// record up, read from the API server by name; a record of the same claim
// someone else holds stays.
func TestReleaseAllGivesUpARecordTheCacheHasNotSeen(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	c := claimer{client: cacheBehind{suiteMgr.GetClient()}, apiReader: k8s, serverNamespace: serverNamespace, kind: userClaimKind}
	holder := newUser(ns, "gone", "gone-"+ns)
	holder.UID = types.UID("uid-gone-" + ns)
	key := claimUsername(holder.Spec.Username)
	recKey := types.NamespacedName{Namespace: serverNamespace, Name: claimRecordName(claimKindUser, key)}

	someoneElse := newUser(ns, "else", holder.Spec.Username)
	someoneElse.UID = types.UID("uid-else-" + ns)
	create(t, c.record(someoneElse, key))
	if err := c.releaseAll(ctx, holder); err != nil {
		t.Fatal(err)
	}
	if rec := getSecretOrNil(t, recKey.Namespace, recKey.Name); rec == nil || rec.Labels[labelClaimOwner] != string(someoneElse.UID) {
		t.Fatalf("someone else's claim record was given up")
	}
	if err := k8s.Delete(ctx, getSecret(t, recKey.Namespace, recKey.Name)); err != nil {
		t.Fatal(err)
	}

	create(t, c.record(holder, key))
	if err := c.releaseAll(ctx, holder); err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, recKey)
}
