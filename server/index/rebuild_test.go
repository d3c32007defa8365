package index

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/internal/credstore"
)

// TestRebuildKeepsTheOldestClaim checks the rule the controller applies to
// conflicts, whatever order the entries come out of the map in: the oldest
// claim of a client id or username wins (the name breaks ties), and a numeric
// id goes to the oldest client-id winner that claims it.
func TestRebuildKeepsTheOldestClaim(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	client := func(name string, age int, id string, numeric int64) *entry {
		return &entry{name: name, created: t0.Add(time.Duration(age) * time.Second),
			client: &Client{ClientVerifier: credstore.ClientVerifier{ClientID: id, NumericID: numeric}}}
	}
	user := func(name string, age int, username string) *entry {
		return &entry{name: name, created: t0.Add(time.Duration(age) * time.Second),
			user: &User{UserVerifier: credstore.UserVerifier{Username: username}}}
	}
	entries := []*entry{
		client("c-new", 5, "shared", 7),
		client("c-old", 1, "shared", 8),
		client("c-tie-b", 2, "tie", 0),
		client("c-tie-a", 2, "tie", 0),
		// Loses its client id, so it must not take numeric id 9 either.
		client("c-loser", 9, "shared", 9),
		client("n-young", 4, "n-young", 8),
		client("n-old", 0, "n-old", 8),
		user("u-new", 3, "alice"),
		user("u-old", 2, "alice"),
		client("no-id", 0, "", 0),
	}
	for range 20 { // map order varies from run to run
		ix := New(logrDiscard())
		for _, e := range entries {
			ix.entries[e.name] = e
		}
		ix.rebuild()
		s := ix.Snapshot()
		want := func(what string, got, want any) {
			t.Helper()
			if got != want {
				t.Fatalf("%s: got %v, want %v", what, got, want)
			}
		}
		want("shared", s.Client("shared"), ix.entries["c-old"].client)
		want("tie", s.Client("tie"), ix.entries["c-tie-a"].client)
		want("numeric 8", s.ClientByNumericID(8), ix.entries["n-old"].client)
		want("numeric 7", s.ClientByNumericID(7), (*Client)(nil))
		want("numeric 9", s.ClientByNumericID(9), (*Client)(nil))
		want("alice", s.User("alice"), ix.entries["u-old"].user)
		c, u := s.Counts()
		want("counts", fmt.Sprint(c, u), "4 1")
	}
}

// TestIncrementalRebuildMatchesFull applies random bursts of changes, some of
// them contesting a claim, and checks after each that the snapshot equals a
// full rebuild of the same entries, and that most bursts were applied
// incrementally.
func TestIncrementalRebuildMatchesFull(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ix := New(logrDiscard())
	randomEntry := func(name string) *entry {
		e := &entry{name: name, created: t0.Add(time.Duration(rng.IntN(50)) * time.Second)}
		if rng.IntN(2) == 0 {
			// Mostly unique ids, a few from a small shared pool.
			id, numeric := "id-"+name, int64(0)
			if rng.IntN(40) == 0 {
				id = fmt.Sprintf("shared-%d", rng.IntN(3))
			}
			if rng.IntN(3) == 0 {
				numeric = int64(rng.IntN(5000) + 1)
			}
			e.client = &Client{ClientVerifier: credstore.ClientVerifier{Namespace: "ns", ClientID: id, NumericID: numeric}}
			if rng.IntN(3) == 0 { // a few ServiceAccounts, some bound by several clients
				e.client.ServiceAccountName = fmt.Sprintf("sa-%d", rng.IntN(5))
			}
		} else {
			username := "user-" + name
			if rng.IntN(40) == 0 {
				username = fmt.Sprintf("shared-user-%d", rng.IntN(3))
			}
			e.user = &User{UserVerifier: credstore.UserVerifier{Username: username}}
		}
		return e
	}
	names := make([]string, 400)
	for i := range names {
		names[i] = fmt.Sprintf("s-%03d", i)
	}
	ix.mu.Lock()
	for _, n := range names[:300] {
		ix.set(n, randomEntry(n))
	}
	ix.mu.Unlock()
	ix.rebuild()
	for round := range 300 {
		ix.mu.Lock()
		for range rng.IntN(8) + 1 {
			n := names[rng.IntN(len(names))]
			if rng.IntN(4) == 0 {
				ix.set(n, nil)
			} else {
				ix.set(n, randomEntry(n))
			}
		}
		ix.mu.Unlock()
		ix.rebuild()

		ref := New(logrDiscard())
		ix.mu.Lock()
		for n, e := range ix.entries {
			ref.entries[n] = e
		}
		ix.mu.Unlock()
		ref.fullRebuild()
		got, want := ix.Snapshot(), ref.Snapshot()
		if !maps.Equal(got.clients, want.clients) || !maps.Equal(got.clientsByNumeric, want.clientsByNumeric) || !maps.Equal(got.users, want.users) ||
			!sameBindings(got.clientsBySA, want.clientsBySA) {
			t.Fatalf("round %d: incremental snapshot differs from a full rebuild:\nclients %d/%d numeric %d/%d users %d/%d",
				round, len(got.clients), len(want.clients), len(got.clientsByNumeric), len(want.clientsByNumeric), len(got.users), len(want.users))
		}
	}
	full, all := ix.fullRebuilds.Load(), ix.rebuilds.Load()
	t.Logf("%d rebuilds, %d of them full", all, full)
	if full*2 > all {
		t.Errorf("%d of %d rebuilds were full: the incremental path is hardly used", full, all)
	}
}

// BenchmarkRebuild measures one rebuild after a single changed verifier with
// 10,000 clients and 10,000 users loaded, incremental and full.
func BenchmarkRebuild(b *testing.B) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ix := New(logrDiscard())
	ix.mu.Lock()
	for i := range 10000 {
		n := fmt.Sprintf("c-%05d", i)
		ix.set(n, &entry{name: n, created: t0, client: &Client{ClientVerifier: credstore.ClientVerifier{ClientID: n, NumericID: int64(i + 1)}}})
		n = fmt.Sprintf("u-%05d", i)
		ix.set(n, &entry{name: n, created: t0, user: &User{UserVerifier: credstore.UserVerifier{Username: n}}})
	}
	ix.mu.Unlock()
	ix.rebuild()
	change := func(i int) {
		n := fmt.Sprintf("c-%05d", i%10000)
		ix.mu.Lock()
		ix.set(n, &entry{name: n, created: t0, client: &Client{ClientVerifier: credstore.ClientVerifier{ClientID: n, NumericID: int64(i%10000 + 1)}}})
		ix.mu.Unlock()
	}
	b.Run("incremental", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			change(i)
			ix.rebuild()
		}
	})
	b.Run("full", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			change(i)
			ix.mu.Lock()
			ix.full = true
			ix.mu.Unlock()
			ix.rebuild()
		}
	})
}

// sameBindings compares two clientsBySA maps, in any order within a key.
func sameBindings(a, b map[string][]*Client) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y := b[k]
		if len(x) != len(y) {
			return false
		}
		for _, c := range x {
			if !slices.Contains(y, c) {
				return false
			}
		}
	}
	return true
}

func TestServiceAccountClientsStayInTheirNamespace(t *testing.T) {
	s, err := NewSnapshot([]credstore.ClientVerifier{
		{Namespace: "team-a", ClientID: "a1", ServiceAccountName: "app"},
		{Namespace: "team-a", ClientID: "a2", ServiceAccountName: "app"},
		{Namespace: "team-b", ClientID: "b1", ServiceAccountName: "app"},
		{Namespace: "team-a", ClientID: "secret-only"},
	}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(cs []*Client) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ClientID)
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct{ ns, name, want string }{
		{"team-a", "app", "[a1 a2]"}, {"team-b", "app", "[b1]"}, {"team-c", "app", "[]"}, {"team-a", "other", "[]"},
	} {
		if got := fmt.Sprint(ids(s.ServiceAccountClients(tc.ns, tc.name))); got != tc.want {
			t.Errorf("%s/%s: %s, want %s", tc.ns, tc.name, got, tc.want)
		}
	}
}

func TestAClientWithoutSecretsNeedsAServiceAccount(t *testing.T) {
	doc := func(v credstore.ClientVerifier) Secret {
		b, err := credstore.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		return Secret{Name: "v", Type: credstore.TypeClientVerifier, Data: b, HasData: true}
	}
	if e, err := parse(doc(credstore.ClientVerifier{Namespace: "apps", ClientID: "reports", ServiceAccountName: "reports"})); err != nil || e.client == nil {
		t.Fatalf("a ServiceAccount client without secrets: %v", err)
	}
	if _, err := parse(doc(credstore.ClientVerifier{Namespace: "apps", ClientID: "nothing"})); err == nil {
		t.Fatal("a client with neither secrets nor a ServiceAccount was accepted")
	}
}
