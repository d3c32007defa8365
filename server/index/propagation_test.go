package index

import (
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/internal/credstore"
)

// TestOnPropagatedMeasuresEachNewStamp checks what the propagation metric
// counts: nothing of the initial list (old writes, not propagation), each
// change with a new stamp once, from its stamp, and nothing for a re-list
// that delivers the same stamp again or for an unstamped Secret.
func TestOnPropagatedMeasuresEachNewStamp(t *testing.T) {
	var seen []time.Duration
	ix := New(logrDiscard())
	ix.OnPropagated(func(d time.Duration) { seen = append(seen, d) })
	user := func(name string, writtenAt time.Time) Secret {
		doc, err := credstore.Encode(credstore.UserVerifier{Username: name, PasswordHash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"})
		if err != nil {
			t.Fatal(err)
		}
		return Secret{Namespace: "ns", Name: "user-" + name, Type: credstore.TypeUserVerifier, Data: doc, HasData: true, WrittenAt: writtenAt}
	}
	old := time.Now().Add(-time.Hour)
	ix.Upsert(user("listed", old))
	ix.rebuild()
	ix.synced.Store(true) // as Serve does after the initial list
	if len(seen) != 0 {
		t.Fatalf("the initial list was measured: %v", seen)
	}

	written := time.Now().Add(-300 * time.Millisecond)
	ix.Upsert(user("new", written))
	ix.Upsert(user("listed", old)) // a re-list: same stamp
	ix.Upsert(user("unstamped", time.Time{}))
	ix.rebuild()
	if len(seen) != 1 || seen[0] < 300*time.Millisecond || seen[0] > time.Minute {
		t.Fatalf("measured %v, want one figure of about 300ms", seen)
	}
	if ix.Snapshot().User("new") == nil {
		t.Fatal("the measured change is not served")
	}
	ix.Upsert(user("new", written))
	ix.rebuild()
	if len(seen) != 1 {
		t.Fatalf("the same stamp was measured twice: %v", seen)
	}
}
