package lockout

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	dto "github.com/prometheus/client_model/go"

	"github.com/tokensmith/tokensmith/internal/credstore"
	"github.com/tokensmith/tokensmith/server/index"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func user(name string) *index.User {
	return &index.User{UserVerifier: credstore.UserVerifier{Namespace: "apps", Name: name, Username: name}}
}

// attempt is one login as server/login makes it: Check, then Record when allowed.
func attempt(l *Lockout, u *index.User, ok bool, now time.Time) (allowed bool) {
	if l.Check(u, now) {
		return false
	}
	l.Record(u, ok, now)
	return true
}

type fakeWriter struct {
	mu     sync.Mutex
	writes []time.Time
	err    error
}

func (w *fakeWriter) WriteLock(_ context.Context, _ index.UserRef, until time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, until)
	return w.err
}

func TestThresholdThenGrowingLocksUpToTheCap(t *testing.T) {
	l := New(Policy{}, nil, testr.New(t))
	u := user("alice")
	now := t0
	for i := 1; i < DefaultThreshold; i++ {
		if !attempt(l, u, false, now) {
			t.Fatalf("failure %d was refused before the threshold", i)
		}
	}
	if l.Check(u, now) {
		t.Fatal("locked before the threshold")
	}
	l.Record(u, false, now) // the threshold-th failure
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for i, minutes := range want {
		d := minutes * time.Minute
		if !l.Check(u, now) || !l.Check(u, now.Add(d-time.Second)) {
			t.Fatalf("lock %d: not locked during its %s", i+1, d)
		}
		now = now.Add(d)
		if l.Check(u, now) {
			t.Fatalf("lock %d: still locked after %s", i+1, d)
		}
		// One failure after a lock runs out locks again, for twice as long.
		l.Record(u, false, now)
	}
}

func TestSuccessForgetsFailuresAndBackoff(t *testing.T) {
	l := New(Policy{Threshold: 3}, nil, testr.New(t))
	u := user("alice")
	for range 3 {
		attempt(l, u, false, t0)
	}
	if !l.Check(u, t0) {
		t.Fatal("not locked after the threshold")
	}
	now := t0.Add(time.Minute)
	if !attempt(l, u, true, now) {
		t.Fatal("the right password was refused after the lock ran out")
	}
	if l.Len() != 0 {
		t.Fatal("a success left state behind")
	}
	for i := range 2 {
		if !attempt(l, u, false, now) {
			t.Fatalf("failure %d after a success was refused: the counter did not reset", i+1)
		}
	}
	// Two failures after the reset, then a success in between resets again.
	attempt(l, u, true, now)
	attempt(l, u, false, now)
	attempt(l, u, false, now)
	if l.Check(u, now) {
		t.Fatal("locked by failures on both sides of a success")
	}
}

func TestADayWithoutFailuresForgets(t *testing.T) {
	l := New(Policy{Threshold: 2}, nil, testr.New(t))
	u := user("alice")
	attempt(l, u, false, t0)
	attempt(l, u, false, t0) // lock 1
	now := t0.Add(DefaultResetAfter)
	attempt(l, u, false, now) // not armed any more: counts as the first failure
	if l.Check(u, now) {
		t.Fatal("a failure a day later locked again at once")
	}
	l.Record(u, false, now) // second failure: the first lock length again
	if !l.Check(u, now.Add(time.Minute-time.Second)) || l.Check(u, now.Add(time.Minute)) {
		t.Fatal("the back-off did not start again at the base")
	}
}

// TestANonstopAttackerGetsAtMost100ChecksAnHour computes, with a fake clock,
// how many password checks that would succeed with the right password a
// nonstop attacker gets in any hour (ASVS 2.2.1: at most 100), both sending
// one attempt a second and sending 50 at once every second.
func TestANonstopAttackerGetsAtMost100ChecksAnHour(t *testing.T) {
	for _, burst := range []int{1, 50} {
		t.Run(fmt.Sprintf("%d at once every second", burst), func(t *testing.T) {
			l := New(Policy{}, nil, testr.New(t))
			u := user("victim")
			var allowed []time.Time
			for now := t0; now.Before(t0.Add(6 * time.Hour)); now = now.Add(time.Second) {
				n := 0
				for range burst { // all in flight before any finishes
					if !l.Check(u, now) {
						n++
						allowed = append(allowed, now)
					}
				}
				for range n {
					l.Record(u, false, now)
				}
			}
			worst, first := 0, 0
			for i, at := range allowed {
				j := i
				for j < len(allowed) && allowed[j].Before(at.Add(time.Hour)) {
					j++
				}
				worst = max(worst, j-i)
				if at.Before(t0.Add(time.Hour)) {
					first++
				}
			}
			// Threshold, then one after each lock: 1m, 2m, 4m, 8m and 16m end within the first hour.
			if want := DefaultThreshold + 5; worst != want || first != want || (Policy{}).ChecksInFirstHour() != want {
				t.Errorf("worst hour %d, first hour %d, want %d", worst, first, want)
			}
			if worst > 100 {
				t.Errorf("%d checks in one hour, more than ASVS 2.2.1's 100", worst)
			}
			last := allowed[len(allowed)-1]
			if gap := last.Sub(allowed[len(allowed)-2]); gap != DefaultMax {
				t.Errorf("steady state: one check every %s, want every %s", gap, DefaultMax)
			}
			t.Logf("worst hour: %d checks allowed, %d in the first hour, then one every %s", worst, first, DefaultMax)
		})
	}
}

func TestMemoryIsBounded(t *testing.T) {
	l := New(Policy{Threshold: 2, MaxEntries: 100}, nil, testr.New(t))
	locked := user("locked")
	attempt(l, locked, false, t0)
	attempt(l, locked, false, t0)
	for i := range 1000 {
		attempt(l, user(fmt.Sprint("u", i)), false, t0)
		if l.Len() > 100 {
			t.Fatalf("%d entries after %d users, bound is 100", l.Len(), i+1)
		}
	}
	if !l.Check(locked, t0) {
		t.Fatal("making room evicted a locked user")
	}
}

func TestLocksRecordedInStatus(t *testing.T) {
	t.Run("another replica's lock is honoured and backed off from", func(t *testing.T) {
		l := New(Policy{Threshold: 5}, nil, testr.New(t))
		u := user("alice")
		until := t0.Add(time.Minute)
		u.LockedUntil = &until
		if !l.Check(u, t0) {
			t.Fatal("a lock in the User's status was not honoured")
		}
		if l.Check(u, until) {
			t.Fatal("still locked after the status lock ran out")
		}
		l.Record(u, false, until) // one failure after someone else's lock locks again
		if !l.Check(u, until) {
			t.Fatal("no back-off after another replica's lock")
		}
	})
	t.Run("clearing status unlocks the replica that set the lock", func(t *testing.T) {
		w := &fakeWriter{}
		l := New(Policy{Threshold: 2}, w, testr.New(t))
		u := user("alice")
		attempt(l, u, false, t0)
		attempt(l, u, false, t0)
		if !l.Check(u, t0) {
			t.Fatal("not locked")
		}
		if n := l.Flush(context.Background()); n != 0 || len(w.writes) != 1 || !w.writes[0].Equal(t0.Add(time.Minute)) {
			t.Fatalf("writes %v, failed %d", w.writes, n)
		}
		// The index shows the lock this replica wrote, then an administrator removes it.
		seen := *u
		seen.LockedUntil = &w.writes[0]
		if !l.Check(&seen, t0.Add(time.Second)) {
			t.Fatal("not locked while the status shows the lock")
		}
		if !attempt(l, u, true, t0.Add(2*time.Second)) {
			t.Fatal("still locked after status.lockedUntil was removed")
		}
		// And the cleared user starts from zero: one failure does not lock.
		attempt(l, u, false, t0.Add(3*time.Second))
		if l.Check(u, t0.Add(3*time.Second)) {
			t.Fatal("back-off survived the clearing")
		}
	})
	t.Run("clearing status unlocks the replica that set the lock with no login in between", func(t *testing.T) {
		w := &fakeWriter{}
		l := New(Policy{Threshold: 1}, w, testr.New(t))
		u := user("alice")
		shown := *u // the index, once the controller has mirrored the lock
		var snap *index.Snapshot
		l.WatchIndex(func() *index.Snapshot { return snap })
		attempt(l, u, false, t0)
		l.Flush(context.Background())
		l.Observe(t0) // the index does not show it yet
		shown.LockedUntil = &w.writes[0]
		snap = mustSnapshot(t, shown)
		l.Observe(t0.Add(time.Second))
		if len(l.unseen) != 0 {
			t.Fatal("the lock the index shows is still unseen")
		}
		if !attempt(l, u, true, t0.Add(2*time.Second)) {
			t.Fatal("still locked after status.lockedUntil was removed")
		}
	})
	t.Run("without an observed lock, the local lock holds until it runs out", func(t *testing.T) {
		l := New(Policy{Threshold: 1}, &fakeWriter{}, testr.New(t))
		u := user("alice")
		attempt(l, u, false, t0)
		if !l.Check(u, t0.Add(time.Minute-time.Second)) || l.Check(u, t0.Add(time.Minute)) {
			t.Fatal("the local lock did not last exactly its minute")
		}
	})
	t.Run("an old lock that ran out neither locks nor unlocks", func(t *testing.T) {
		l := New(Policy{Threshold: 2}, nil, testr.New(t))
		u := user("alice")
		old := t0.Add(-48 * time.Hour)
		u.LockedUntil = &old
		attempt(l, u, false, t0)
		attempt(l, u, false, t0)
		if !l.Check(u, t0) {
			t.Fatal("failures after an old lock did not lock")
		}
	})
	t.Run("a failed write is retried and the local lock holds", func(t *testing.T) {
		w := &fakeWriter{err: errors.New("api server away")}
		l := New(Policy{Threshold: 1}, w, testr.New(t))
		u := user("alice")
		now := time.Now()
		attempt(l, u, false, now)
		if n := l.Flush(context.Background()); n != 1 {
			t.Fatalf("%d queued again, want 1", n)
		}
		w.err = nil
		if n := l.Flush(context.Background()); n != 0 || len(w.writes) != 2 {
			t.Fatalf("writes %v", w.writes)
		}
		if !l.Check(u, now) {
			t.Fatal("the local lock did not hold")
		}
	})
}

func TestLockoutsCounter(t *testing.T) {
	l := New(Policy{Threshold: 1}, nil, testr.New(t))
	attempt(l, user("a"), false, t0)
	attempt(l, user("b"), false, t0)
	if got := counterValue(t, l); got != 2 {
		t.Fatalf("tokensmith_user_lockouts_total = %v, want 2", got)
	}
}

func counterValue(t *testing.T, l *Lockout) float64 {
	t.Helper()
	var m dto.Metric
	if err := l.locks.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func mustSnapshot(t *testing.T, users ...index.User) *index.Snapshot {
	t.Helper()
	var vs []credstore.UserVerifier
	for _, u := range users {
		vs = append(vs, u.UserVerifier)
	}
	snap, err := index.NewSnapshot(nil, vs, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}
