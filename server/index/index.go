package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/internal/keyset"
	"github.com/tokensmith/tokensmith/server/tokens"
)

// CoalesceWindow is how long the index waits after a change before rebuilding
// the snapshot, so that a burst (the initial list of 20,000 Secrets, a
// controller resync) costs one rebuild, not one per Secret. A single change is
// served after about this long.
const CoalesceWindow = 25 * time.Millisecond

// Index keeps the current Snapshot of the credential Secrets in the server's
// namespace. Snapshot is safe for concurrent use and never blocks on the API
// server.
type Index struct {
	log  logr.Logger
	snap atomic.Pointer[Snapshot]
	// synced is set once the informer listed every Secret and the first
	// snapshot holding them all was published.
	synced atomic.Bool

	mu      sync.Mutex
	entries map[string]*entry // by Secret name (one namespace)
	// local holds revocations this replica wrote, until they expire: they are
	// served at once, before the informer delivers the Secret, and survive any
	// rebuild in between.
	local map[string]time.Time
	dirty chan struct{}
	// changed holds, for each entry changed since the last rebuild, what it
	// was before (nil: it did not exist); claims counts claimants per key; full
	// asks the next rebuild to start from every entry (see incremental.go).
	changed map[string]*entry
	claims  claims
	full    bool
	// rebuilds counts snapshot rebuilds (tests check that bursts coalesce),
	// fullRebuilds those of them that started from every entry.
	rebuilds     atomic.Int64
	fullRebuilds atomic.Int64
	// propagated, when set, is told each served change's propagation time.
	propagated func(time.Duration)
}

// entry is one Secret parsed once.
type entry struct {
	created time.Time
	// writtenAt is the Secret's credstore.AnnotationWrittenAt, zero if none.
	writtenAt   time.Time
	name        string
	client      *Client
	user        *User
	keyring     *tokens.Keyring
	revocations []credstore.Revocation
}

// New returns an index serving an empty snapshot until Run has synced.
func New(log logr.Logger) *Index {
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	ix := &Index{
		log:     log,
		entries: map[string]*entry{},
		local:   map[string]time.Time{},
		dirty:   make(chan struct{}, 1),
		changed: map[string]*entry{},
		claims:  newClaims(),
		full:    true,
	}
	ix.fullRebuild() // of no entries: the empty snapshot
	return ix
}

// Snapshot returns the current snapshot; never nil.
func (ix *Index) Snapshot() *Snapshot { return ix.snap.Load() }

// Synced reports whether the informer has listed every Secret and the
// snapshot reflects them.
func (ix *Index) Synced() bool { return ix.synced.Load() }

// Ready reports whether the index has synced and holds a complete keyring (a
// current key for every algorithm): the condition of /readyz.
func (ix *Index) Ready() bool { return ix.Synced() && ix.Snapshot().Keyring().Complete() }

// Revoke makes this replica treat id (a jti or a session id) as revoked until
// expiresAt, at once. The Secret written by the revoker reaches the other
// replicas through their informers; this covers the time until it reaches
// this one too.
func (ix *Index) Revoke(id string, expiresAt time.Time) {
	if id == "" {
		return
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if old, ok := ix.local[id]; !ok || expiresAt.After(old) {
		ix.local[id] = expiresAt
	}
	ix.snap.Store(ix.snap.Load().withRevoked(id, expiresAt))
}

// Serve publishes the snapshot of every Secret delivered so far, marks the
// index synced, then rebuilds after each burst of changes until ctx ends. The
// watcher (server/index/watch) calls it once its initial list is delivered.
func (ix *Index) Serve(ctx context.Context, namespace string) {
	// The initial list is one burst: one rebuild covers it.
	select {
	case <-ix.dirty:
	default:
	}
	ix.rebuild()
	ix.synced.Store(true)
	clients, users := ix.Snapshot().Counts()
	ix.log.Info("credentials synced", "namespace", namespace, "clients", clients, "users", users,
		"signingKeys", ix.Snapshot().Keyring().Complete())
	ix.loop(ctx)
}

// Rebuilds counts the snapshot rebuilds so far (tests check that bursts coalesce).
func (ix *Index) Rebuilds() int64 { return ix.rebuilds.Load() }

// loop rebuilds after each burst of changes, at most once per CoalesceWindow.
func (ix *Index) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-ix.dirty:
		}
		t := time.NewTimer(CoalesceWindow)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		ix.rebuild()
	}
}

func (ix *Index) markDirty() {
	select {
	case ix.dirty <- struct{}{}:
	default:
	}
}

func (ix *Index) rebuild() {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	// An expired local revocation is dropped by a full rebuild.
	now := time.Now()
	for _, exp := range ix.local {
		if now.After(exp.Add(tokens.Leeway)) {
			ix.full = true
			break
		}
	}
	// Revoke may have published a copy with more revocations since; it holds
	// ix.mu too, so this is the latest.
	if next, ok := ix.applyChanges(ix.snap.Load()); ok {
		ix.snap.Store(next)
		ix.observePropagation()
		clear(ix.changed)
		ix.rebuilds.Add(1)
		return
	}
	ix.fullRebuild()
	ix.observePropagation()
	if len(ix.changed) > maxIncremental {
		// A cleared map keeps its size: after the initial list, room for
		// every Secret, held for good.
		ix.changed = map[string]*entry{}
	} else {
		clear(ix.changed)
	}
	ix.full = false
	ix.rebuilds.Add(1)
	ix.fullRebuilds.Add(1)
}

// OnPropagated makes the index call observe, once the initial list is
// served, with how long each changed verifier took from the controller's
// write (credstore.AnnotationWrittenAt) to this replica's snapshot: the
// figure the controller's propagation allowance must stay above.
func (ix *Index) OnPropagated(observe func(time.Duration)) {
	ix.mu.Lock()
	ix.propagated = observe
	ix.mu.Unlock()
}

// observePropagation reports the entries changed by the rebuild that just
// published. ix.mu must be held. A re-list delivers unchanged Secrets again:
// only a new stamp is a change the controller made.
func (ix *Index) observePropagation() {
	if ix.propagated == nil || !ix.synced.Load() {
		return
	}
	now := time.Now()
	for name, old := range ix.changed {
		e := ix.entries[name]
		if e == nil || e.writtenAt.IsZero() || old != nil && old.writtenAt.Equal(e.writtenAt) {
			continue
		}
		ix.propagated(now.Sub(e.writtenAt))
	}
}

// fullRebuild makes the snapshot from every entry. ix.mu must be held.
func (ix *Index) fullRebuild() {
	// The oldest claim of a client id or username wins, as the controller
	// decides conflicts; among the client-id winners, the oldest claim of a
	// numeric id. One pass over the entries, no sort: a rebuild follows every
	// burst of changes, and sorting 20,000 entries each time was half its cost.
	var (
		clients = make(map[string]*entry, len(ix.entries))
		users   = make(map[string]*entry, len(ix.entries))
		keys    *entry
		revoked = make(map[string]time.Time, len(ix.local))
	)
	add := func(id string, exp time.Time) {
		if old, ok := revoked[id]; id != "" && (!ok || exp.After(old)) {
			revoked[id] = exp
		}
	}
	for _, e := range ix.entries {
		switch {
		case e.client != nil:
			if id := e.client.ClientID; id != "" {
				if cur, ok := clients[id]; !ok || e.older(cur) {
					clients[id] = e
				}
			}
		case e.user != nil:
			if name := e.user.Username; name != "" {
				if cur, ok := users[name]; !ok || e.older(cur) {
					users[name] = e
				}
			}
		case e.keyring != nil:
			// Only one Secret name is parsed as signing keys; were there more, the newest.
			if keys == nil || keys.older(e) {
				keys = e
			}
		}
		for _, r := range e.revocations {
			add(r.ID, r.ExpiresAt)
		}
	}
	now := time.Now()
	for id, exp := range ix.local {
		if now.After(exp.Add(tokens.Leeway)) {
			delete(ix.local, id)
			continue
		}
		add(id, exp)
	}
	snap := &Snapshot{
		clients:          make(map[string]*Client, len(clients)),
		clientsByNumeric: make(map[int64]*Client),
		clientsBySA:      make(map[string][]*Client),
		users:            make(map[string]*User, len(users)),
		revoked:          revoked,
	}
	if keys != nil {
		snap.keyring = keys.keyring
	}
	numeric := map[int64]*entry{}
	for id, e := range clients {
		snap.clients[id] = e.client
		bindSA(snap.clientsBySA, e.client)
		if n := e.client.NumericID; n != 0 {
			if cur, ok := numeric[n]; !ok || e.older(cur) {
				numeric[n] = e
			}
		}
	}
	for n, e := range numeric {
		snap.clientsByNumeric[n] = e.client
	}
	for name, e := range users {
		snap.users[name] = e.user
	}
	ix.snap.Store(snap)
}

// older reports whether e's claim precedes o's: created earlier, or at the
// same second with a smaller name.
func (e *entry) older(o *entry) bool {
	if !e.created.Equal(o.created) {
		return e.created.Before(o.created)
	}
	return e.name < o.name
}

// Secret is what the index reads of one labelled credential Secret.
type Secret struct {
	Namespace, Name string
	Created         time.Time
	// Type is the credstore.LabelSecretType label.
	Type string
	// WrittenAt is its credstore.AnnotationWrittenAt, zero when absent.
	WrittenAt time.Time
	// Data is the credstore.DataKey value; HasData is false when it is absent.
	Data    []byte
	HasData bool
}

// Upsert applies an added or changed Secret: Apply of Parse(s).
func (ix *Index) Upsert(s Secret) { ix.Apply(s.Namespace, s.Name, Parse(s)) }

// Parsed is one Secret as the index keeps it: the entry Parse made of it, or
// why it was skipped, and none of its data. The watcher parses each Secret
// once, in its informer's transform, and caches the Parsed in place of the
// Secret, so that each verifier is held once (the entry, shared by the
// informer's cache and the index) and its JSON document is dropped at once.
type Parsed struct {
	entry *entry
	// fault is set when the Secret is malformed: what kind of fault, never
	// its data (safe to log). typ is its type label, for that log line.
	fault, typ string
}

// Parse parses s. Parsing takes no lock and reads nothing of the index: the
// watcher calls it before the informer caches the Secret.
func Parse(s Secret) Parsed {
	e, err := parse(s)
	if err != nil {
		return Parsed{fault: describe(err), typ: s.Type}
	}
	return Parsed{entry: e}
}

// Apply applies the Secret namespace/name, parsed by Parse, as added or
// changed.
func (ix *Index) Apply(namespace, name string, p Parsed) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if p.fault != "" {
		// Never log the data: only which Secret and what kind of fault.
		ix.log.Error(nil, "skipping malformed credential Secret", "secret", namespace+"/"+name,
			"type", p.typ, "fault", p.fault)
		old := ix.entries[name]
		if old != nil && (old.keyring != nil || old.revocations != nil) {
			// Keep the last good signing keys and revocations: dropping them would
			// stop every token, or bring revoked tokens back.
			return
		}
		if old == nil {
			return
		}
		ix.set(name, nil)
		return
	}
	ix.set(name, p.entry)
}

// Delete applies the deletion of the Secret name.
func (ix *Index) Delete(name string) {
	ix.mu.Lock()
	ix.set(name, nil)
	ix.mu.Unlock()
}

// fault is a parse error that quotes no data, safe to log.
type fault string

func (f fault) Error() string { return string(f) }

// parse decodes a Secret into its entry. It returns nil, nil for a Secret the
// index deliberately ignores (a signing-keys Secret of another name, a
// verifier of an object no TokenPolicy allows).
func parse(s Secret) (*entry, error) {
	e := &entry{created: s.Created, writtenAt: s.WrittenAt, name: s.Name}
	data := s.Data
	if !s.HasData {
		return nil, fault("no " + credstore.DataKey + " key")
	}
	switch s.Type {
	case credstore.TypeClientVerifier:
		var v credstore.ClientVerifier
		if err := credstore.Decode(data, &v); err != nil {
			return nil, err
		}
		// A client bound to a ServiceAccount may have no secret at all.
		if v.ClientID == "" || len(v.Secrets) == 0 && v.ServiceAccountName == "" {
			return nil, fault("client verifier without a client id, or without secrets and a ServiceAccount")
		}
		if v.PolicyDenied {
			// No TokenPolicy allows the client: as if it did not exist.
			return nil, nil
		}
		e.client = newClient(v)
	case credstore.TypeUserVerifier:
		var v credstore.UserVerifier
		if err := credstore.Decode(data, &v); err != nil {
			return nil, err
		}
		if v.Username == "" {
			return nil, fault("user verifier without a username")
		}
		if v.PolicyDenied {
			return nil, nil
		}
		e.user = newUser(v)
	case credstore.TypeSigningKeys:
		if s.Name != credstore.SigningKeysSecretName {
			return nil, nil
		}
		var set keyset.Set
		if err := credstore.Decode(data, &set); err != nil {
			return nil, err
		}
		kr, err := tokens.NewKeyring(&set)
		if err != nil {
			// Key ids and algorithms only; never key material.
			return nil, fault("signing keys unusable: " + err.Error())
		}
		e.keyring = kr
	case credstore.TypeRevocations:
		var doc credstore.Revocations
		if err := credstore.Decode(data, &doc); err != nil {
			return nil, err
		}
		e.revocations = doc.Entries
		if e.revocations == nil {
			e.revocations = []credstore.Revocation{}
		}
	default:
		return nil, fault("unknown secret type")
	}
	return e, nil
}

// describe names an error's kind without quoting the data it came from.
func describe(err error) string {
	var (
		se *json.SyntaxError
		te *json.UnmarshalTypeError
		f  fault
	)
	switch {
	case errors.As(err, &f):
		return string(f)
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at offset %d", se.Offset)
	case errors.As(err, &te):
		return "wrong JSON type for field " + te.Field
	}
	return fmt.Sprintf("invalid document (%T)", err)
}
