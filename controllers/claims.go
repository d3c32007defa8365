package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/controllers/internal/desired"
	"github.com/tokensmith/tokensmith/internal/credstore"
)

// Claims: who holds a username, a client id or a numeric id.
//
// The first object to claim an identifier holds it until it gives it up (it is
// deleted, or stops naming it), whatever its age and whatever any other object
// does meanwhile. Each claim is a record, a data-less Secret in the server
// namespace whose name is derived from the identifier; creating it is atomic,
// so of two objects claiming one identifier at once exactly one gets it, on
// every reconcile, after every restart and under every leader. A second
// claimant gets Ready=False, reason Conflict, and no verifier.
//
// Deciding by creationTimestamp instead (as tokensmith once did) let an older
// object take a younger one's identifier by editing its own spec.
//
// Records carry no secret-type label, so the token server never reads them;
// they carry the managed-by label, so the controller's cache holds them.
const (
	// labelClaimOwner on a claim record is the UID of the object holding it.
	labelClaimOwner = "auth.tokensmith.io/claim-owner"
	// labelClaimKind on a claim record is claimKindClient or claimKindUser.
	labelClaimKind = "auth.tokensmith.io/claim-kind"
	// annotationClaim on a claim record is the claim itself ("clientID=abc",
	// "numericID=42", "username=bob"), as the field indexes spell it.
	annotationClaim = "auth.tokensmith.io/claim"

	claimKindClient = "client"
	claimKindUser   = "user"
)

// claimKind is what the claim rules, and the watches that follow claims and
// verifiers, need to know of one kind of claimant (OAuthClient, User).
type claimKind struct {
	// name is the record's labelClaimKind: claimKindClient or claimKindUser.
	name string
	// newObject and newList return an empty object and list of the kind.
	newObject func() client.Object
	newList   func() client.ObjectList
	// keys are the claims obj holds against every other object of its kind.
	keys func(obj client.Object) []string
	// index is the field index, and its value, that lists a claim's claimants.
	index func(key string) (field, value string)
	// verifierName names an object's verifier Secret in the server
	// namespace, and verifierType is that Secret's credstore.LabelSecretType.
	verifierName func(namespace, name string) string
	verifierType string
	// serves reports whether the verifier document doc serves claim key.
	serves func(doc []byte, key string) bool
}

var clientClaimKind = claimKind{
	name:         claimKindClient,
	newObject:    func() client.Object { return &authv1alpha1.OAuthClient{} },
	newList:      func() client.ObjectList { return &authv1alpha1.OAuthClientList{} },
	keys:         func(obj client.Object) []string { return oauthClientClaims(obj.(*authv1alpha1.OAuthClient)) },
	index:        func(key string) (string, string) { return indexClaim, key },
	verifierName: credstore.ClientVerifierName,
	verifierType: credstore.TypeClientVerifier,
	serves: func(doc []byte, key string) bool {
		var v credstore.ClientVerifier
		// A verifier marked policyDenied serves nothing, and holds nothing.
		return credstore.Decode(doc, &v) == nil && !v.PolicyDenied &&
			(claimClientID(v.ClientID) == key || v.NumericID != 0 && claimNumericID(v.NumericID) == key)
	},
}

var userClaimKind = claimKind{
	name:      claimKindUser,
	newObject: func() client.Object { return &authv1alpha1.User{} },
	newList:   func() client.ObjectList { return &authv1alpha1.UserList{} },
	keys: func(obj client.Object) []string {
		if u := obj.(*authv1alpha1.User); u.Spec.Username != "" {
			return []string{claimUsername(u.Spec.Username)}
		}
		return nil
	},
	index:        func(key string) (string, string) { return indexUsername, strings.TrimPrefix(key, claimUsername("")) },
	verifierName: credstore.UserVerifierName,
	verifierType: credstore.TypeUserVerifier,
	serves: func(doc []byte, key string) bool {
		var v credstore.UserVerifier
		// A verifier marked policyDenied serves nothing, and holds nothing.
		return credstore.Decode(doc, &v) == nil && claimUsername(v.Username) == key && !v.PolicyDenied
	},
}

// claim is one identifier an object asks for.
type claim struct {
	// key is the field index value: "clientID=...", "numericID=...", "username=...".
	key string
	// what names it for a person, without naming anyone else: `client id "abc"`.
	what string
}

func claimUsername(u string) string  { return "username=" + u }
func claimClientID(id string) string { return "clientID=" + id }
func claimNumericID(n int64) string  { return "numericID=" + strconv.FormatInt(n, 10) }

// oauthClientClaims are the identifiers oc holds against every other
// OAuthClient, as the indexClaim field index has them.
func oauthClientClaims(oc *authv1alpha1.OAuthClient) []string {
	var claims []string
	if id := desired.ClaimedClientID(oc); id != "" {
		claims = append(claims, claimClientID(id))
	}
	if oc.Spec.NumericID != nil {
		claims = append(claims, claimNumericID(*oc.Spec.NumericID))
	}
	return claims
}

// clientClaims are the identifiers oc asks for, in the order acquire tries
// them (and so the one a conflict names first): clientID (when known), then
// its numericID.
func clientClaims(oc *authv1alpha1.OAuthClient, clientID string) []claim {
	var claims []claim
	if clientID != "" {
		claims = append(claims, claim{claimClientID(clientID), fmt.Sprintf("client id %q", clientID)})
	}
	if n := oc.Spec.NumericID; n != nil {
		claims = append(claims, claim{claimNumericID(*n), fmt.Sprintf("numericID %d", *n)})
	}
	return claims
}

// userClaims is the one identifier u asks for: its username.
func userClaims(u *authv1alpha1.User) []claim {
	return []claim{{claimUsername(u.Spec.Username), "username"}}
}

func claimKeys(claims []claim) map[string]bool {
	keys := make(map[string]bool, len(claims))
	for _, c := range claims {
		keys[c.key] = true
	}
	return keys
}

// conflictMessage says which identifier is taken, and never by whom.
func conflictMessage(taken string) string {
	return fmt.Sprintf("The %s is already taken: an identifier stays with whoever claimed it first. Choose another", taken)
}

// refuseConflict handles an identifier someone else holds (taken), or the
// error acquire returned. The holder keeps working; obj must not be able to
// get tokens under an identity that is not its own, so its verifier goes.
// The message names the identifier, never the holder: who holds which
// username or client id is not for every namespace to learn.
func (l lifecycle[T]) refuseConflict(ctx context.Context, obj T, now time.Time, taken string, err error) error {
	if err != nil {
		return err
	}
	if err := deleteSecret(ctx, l.client, l.secrets, l.verifierKey(obj)); err != nil {
		return err
	}
	l.setNotReady(obj, now, authv1alpha1.ReasonConflict, eventConflict, actionRefuse, conflictMessage(taken))
	return nil
}

// otherClaimants maps an object to every other object of its kind sharing
// one of its claims: a change to one claimant (its deletion, an edit) may
// free an identifier for another.
func (k claimKind) otherClaimants(reader client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var reqs []reconcile.Request
		for _, key := range k.keys(o) {
			field, value := k.index(key)
			list := k.newList()
			if err := reader.List(ctx, list, client.MatchingFields{field: value}); err != nil {
				ctrl.LoggerFrom(ctx).Error(err, "listing claimants", "kind", k.name)
				continue
			}
			_ = forEachItem(list, func(other client.Object) {
				if other.GetUID() != o.GetUID() {
					reqs = append(reqs, requestFor(other))
				}
			})
		}
		return reqs
	}
}

// claimRecordName is "claim-<kind>-<160 bits of SHA-256 of the claim>": a
// valid Secret name for any identifier, and unique per identifier.
func claimRecordName(kind, key string) string {
	sum := sha256.Sum256([]byte(kind + "/" + key))
	return "claim-" + kind + "-" + hex.EncodeToString(sum[:20])
}

// claimer takes and gives up claim records for one kind of object.
type claimer struct {
	client          client.Client
	apiReader       client.Reader
	serverNamespace string
	kind            claimKind
}

func (c claimer) recordKey(key string) types.NamespacedName {
	return types.NamespacedName{Namespace: c.serverNamespace, Name: claimRecordName(c.kind.name, key)}
}

// acquire takes every claim in claims that is free for obj. It returns the
// description of the first claim someone else holds, or "" when obj holds
// them all. Claims obj holds but no longer asks for are given up.
func (c claimer) acquire(ctx context.Context, obj client.Object, claims []claim) (string, error) {
	taken := ""
	for _, cl := range claims {
		held, err := c.acquireOne(ctx, obj, cl.key)
		if err != nil {
			return "", err
		}
		if !held && taken == "" {
			taken = cl.what
		}
	}
	keep := map[string]bool{}
	for _, cl := range claims {
		keep[cl.key] = true
	}
	return taken, c.release(ctx, obj, keep)
}

// acquireOne reports whether obj holds key, taking the record if it is free.
func (c claimer) acquireOne(ctx context.Context, obj client.Object, key string) (bool, error) {
	rk := c.recordKey(key)
	// Three rounds at most: a free record taken by someone else between our
	// read and our create, and a stale record deleted, each cost one.
	for range 3 {
		rec := &corev1.Secret{}
		err := c.client.Get(ctx, rk, rec)
		if apierrors.IsNotFound(err) {
			// Not in the cache: try to take it. The create is the question to
			// the API server (a record the cache has not seen yet makes it
			// fail), so a first claim costs one request.
			if held, err := c.heldByVerifier(ctx, obj, key); err != nil || held {
				return false, err
			}
			err = c.client.Create(ctx, c.record(obj, key))
			if err == nil {
				return true, nil
			}
			if !apierrors.IsAlreadyExists(err) {
				return false, fmt.Errorf("creating a claim record: %w", err)
			}
			err = c.apiReader.Get(ctx, rk, rec)
			if apierrors.IsNotFound(err) {
				continue // given up meanwhile
			}
		}
		if err != nil {
			return false, err
		}
		if rec.Labels[labelClaimOwner] == string(obj.GetUID()) {
			return true, nil
		}
		alive, err := c.holderAlive(ctx, rec)
		if err != nil || alive {
			return false, err
		}
		// The holder is gone without giving the claim up (its finalizer was
		// removed by hand): the record is stale.
		if err := c.client.Delete(ctx, rec, client.Preconditions{UID: &rec.UID}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return false, fmt.Errorf("deleting a stale claim record: %w", err)
		}
	}
	return false, fmt.Errorf("claim record %s keeps changing", rk.Name)
}

// heldByVerifier reports whether another claimant of key serves it from a
// verifier it holds: the holder before claim records existed (an upgrade)
// keeps the identifier, and takes its record on its next reconcile.
func (c claimer) heldByVerifier(ctx context.Context, obj client.Object, key string) (bool, error) {
	field, value := c.kind.index(key)
	list := c.kind.newList()
	if err := c.client.List(ctx, list, client.MatchingFields{field: value}); err != nil {
		return false, err
	}
	secrets := secretReader{cached: c.client, api: c.apiReader}
	held := false
	var readErr error
	_ = forEachItem(list, func(other client.Object) {
		if held || readErr != nil || other.GetUID() == obj.GetUID() {
			return
		}
		s, err := secrets.get(ctx, types.NamespacedName{Namespace: c.serverNamespace, Name: c.kind.verifierName(other.GetNamespace(), other.GetName())})
		if err != nil {
			readErr = err
			return
		}
		held = s != nil && c.kind.serves(s.Data[credstore.DataKey], key)
	})
	return held, readErr
}

func (c claimer) record(obj client.Object, key string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: c.serverNamespace,
			Name:      claimRecordName(c.kind.name, key),
			Labels: map[string]string{
				authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue,
				labelClaimOwner:             string(obj.GetUID()),
				labelClaimKind:              c.kind.name,
			},
			Annotations: map[string]string{
				credstore.AnnotationOwner: ownerString(obj),
				annotationClaim:           key,
			},
		},
		Type: corev1.SecretTypeOpaque,
	}
}

// holderAlive reports whether the object a record names still exists. The
// cache may not have seen a holder created a moment ago, so NotFound is
// confirmed with the API server.
func (c claimer) holderAlive(ctx context.Context, rec *corev1.Secret) (bool, error) {
	ns, name, ok := strings.Cut(rec.Annotations[credstore.AnnotationOwner], "/")
	uid := rec.Labels[labelClaimOwner]
	if !ok || uid == "" {
		return false, nil
	}
	key := types.NamespacedName{Namespace: ns, Name: name}
	o := c.kind.newObject()
	err := c.client.Get(ctx, key, o)
	if apierrors.IsNotFound(err) {
		err = c.apiReader.Get(ctx, key, o)
	}
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return string(o.GetUID()) == uid, nil
}

// release gives up every claim obj holds except those in keep. It finds them
// in the cache through the indexClaimHolder field index, so a reconcile costs
// the same whatever the number of Secrets in the server namespace (a label
// selector there walks every Secret of the namespace: 85% of the controller's
// CPU over 20,000 verifiers, docs/performance.md). The cache may not show a
// record taken a moment ago; its arrival wakes every object whose spec claims
// it (secretMapper), holder included, and that reconcile gives it up.
func (c claimer) release(ctx context.Context, obj client.Object, keep map[string]bool) error {
	_, err := c.releaseCached(ctx, obj, keep)
	return err
}

// releaseAll gives up every claim obj holds: it runs once, when obj is
// deleted, and must not leave a record behind. The records the cache shows go
// as in release; the records of the claims obj's spec and status name, which
// it may have taken a moment before its deletion, are read from the API
// server too (by name, a lookup). Only a record of a claim obj had given up
// taken within the cache's lag could stay; holderAlive frees such a record
// for the next claimant.
func (c claimer) releaseAll(ctx context.Context, obj client.Object) error {
	released, err := c.releaseCached(ctx, obj, nil)
	if err != nil {
		return err
	}
	for _, key := range c.kind.keys(obj) {
		rk := c.recordKey(key)
		if released[rk.Name] {
			continue
		}
		rec := &corev1.Secret{}
		if err := c.apiReader.Get(ctx, rk, rec); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return err
		}
		if rec.Labels[labelClaimOwner] != string(obj.GetUID()) || rec.Labels[labelClaimKind] != c.kind.name {
			continue
		}
		if err := c.giveUp(ctx, rec); err != nil {
			return err
		}
	}
	return nil
}

// releaseCached gives up the records the cache shows obj holding, except
// those of the claims in keep, and returns the names of those it gave up.
func (c claimer) releaseCached(ctx context.Context, obj client.Object, keep map[string]bool) (map[string]bool, error) {
	var recs corev1.SecretList
	if err := c.client.List(ctx, &recs, client.InNamespace(c.serverNamespace),
		client.MatchingFields{indexClaimHolder: claimHolder(c.kind.name, obj.GetUID())}); err != nil {
		return nil, err
	}
	released := map[string]bool{}
	for i := range recs.Items {
		rec := &recs.Items[i]
		if keep[rec.Annotations[annotationClaim]] {
			continue
		}
		if err := c.giveUp(ctx, rec); err != nil {
			return nil, err
		}
		released[rec.Name] = true
	}
	return released, nil
}

// giveUp deletes rec, the very record read (a record given up and taken
// again meanwhile by someone else has another UID).
func (c claimer) giveUp(ctx context.Context, rec *corev1.Secret) error {
	if err := c.client.Delete(ctx, rec, client.Preconditions{UID: &rec.UID}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("giving up a claim: %w", err)
	}
	return nil
}

// claimHolder is the indexClaimHolder value of the records the object of
// kind (claimKindClient, claimKindUser) with uid holds.
func claimHolder(kind string, uid types.UID) string {
	return kind + "/" + string(uid)
}

// claimHolderOf is the indexClaimHolder value of s: its holder's kind and UID
// if s is a claim record, none otherwise.
func claimHolderOf(s client.Object) []string {
	kind, uid := s.GetLabels()[labelClaimKind], s.GetLabels()[labelClaimOwner]
	if kind == "" || uid == "" {
		return nil
	}
	return []string{claimHolder(kind, types.UID(uid))}
}
