package index

import "maps"

// The index applies a small burst of changes to the previous snapshot instead
// of rebuilding it from every entry. A full rebuild of 20,000 entries costs a
// few milliseconds; done after every burst while a controller writes hundreds
// of verifiers a second, it was the token server's largest CPU cost.
//
// Incremental application is only exact where no claim is contested: the
// oldest claim of a client id, numeric id or username wins, and working out
// the next winner when a contested claim goes away needs every entry. So the
// index counts the claimants of each key, and any change that touches a key
// with more than one claimant, before or after, falls back to a full rebuild.
// So do changes to signing keys and revocations, which are rare.

// claims counts the claimants of each key among all entries.
type claims struct {
	clientIDs map[string]int
	numeric   map[int64]int
	usernames map[string]int
}

func newClaims() claims {
	return claims{clientIDs: map[string]int{}, numeric: map[int64]int{}, usernames: map[string]int{}}
}

// add counts e's claims (delta +1) or uncounts them (delta -1), and reports
// whether any of its keys had or now has more than one claimant.
func (c claims) add(e *entry, delta int) (contested bool) {
	switch {
	case e.client != nil:
		id := count(c.clientIDs, e.client.ClientID, delta)
		numeric := count(c.numeric, e.client.NumericID, delta)
		return id || numeric
	case e.user != nil:
		return count(c.usernames, e.user.Username, delta)
	}
	return false
}

// count adds delta to the claimants of key (the zero key claims nothing) and
// reports whether it had or now has more than one.
func count[K comparable](m map[K]int, key K, delta int) bool {
	var none K
	if key == none {
		return false
	}
	n := m[key]
	if n+delta == 0 {
		delete(m, key)
	} else {
		m[key] = n + delta
	}
	return n > 1 || n+delta > 1
}

// set replaces the entry named name (nil deletes it) and records the change
// for the next rebuild. ix.mu must be held.
func (ix *Index) set(name string, e *entry) {
	old := ix.entries[name]
	if old == nil && e == nil {
		return
	}
	if _, seen := ix.changed[name]; !seen {
		ix.changed[name] = old
	}
	if old != nil {
		if ix.claims.add(old, -1) || old.keyring != nil || old.revocations != nil {
			ix.full = true
		}
	}
	if e == nil {
		delete(ix.entries, name)
	} else {
		ix.entries[name] = e
		if ix.claims.add(e, +1) || e.keyring != nil || e.revocations != nil {
			ix.full = true
		}
	}
	ix.markDirty()
}

// maxIncremental is the largest burst applied incrementally; past it a full
// rebuild costs about the same.
const maxIncremental = 1024

// applyChanges builds the next snapshot from prev and the changes recorded
// since it, or returns false when a full rebuild is needed. ix.mu must be held.
func (ix *Index) applyChanges(prev *Snapshot) (*Snapshot, bool) {
	if ix.full || len(ix.changed) > maxIncremental || len(ix.changed) > len(ix.entries)/4 {
		return nil, false
	}
	next := *prev // keyring and revoked are unchanged: their changes force a full rebuild
	var clientsCopied, usersCopied bool
	copyClients := func() {
		if !clientsCopied {
			next.clients, next.clientsByNumeric, clientsCopied = maps.Clone(prev.clients), maps.Clone(prev.clientsByNumeric), true
			next.clientsBySA = maps.Clone(prev.clientsBySA)
		}
	}
	copyUsers := func() {
		if !usersCopied {
			next.users, usersCopied = maps.Clone(prev.users), true
		}
	}
	// Take out every old entry first, then put the new ones in: with no key
	// contested, no two of them share a key, in whatever order.
	for _, old := range ix.changed {
		switch {
		case old == nil:
		case old.client != nil:
			copyClients()
			if id := old.client.ClientID; id != "" {
				delete(next.clients, id)
			}
			if n := old.client.NumericID; n != 0 {
				delete(next.clientsByNumeric, n)
			}
			unbindSA(next.clientsBySA, old.client)
		case old.user != nil:
			copyUsers()
			if name := old.user.Username; name != "" {
				delete(next.users, name)
			}
		}
	}
	for name := range ix.changed {
		e := ix.entries[name]
		switch {
		case e == nil:
		case e.client != nil:
			copyClients()
			if id := e.client.ClientID; id != "" {
				next.clients[id] = e.client
				if n := e.client.NumericID; n != 0 {
					next.clientsByNumeric[n] = e.client
				}
				bindSA(next.clientsBySA, e.client)
			}
		case e.user != nil:
			copyUsers()
			if name := e.user.Username; name != "" {
				next.users[name] = e.user
			}
		}
	}
	return &next, true
}
