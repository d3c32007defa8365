package keyset

import (
	"testing"
	"time"
)

func TestReconcile(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var s Set
	changed, err := s.Reconcile(t0, 30*24*time.Hour, 400*24*time.Hour)
	if err != nil || !changed {
		t.Fatalf("first reconcile: changed=%v err=%v, want a new key per algorithm", changed, err)
	}
	if len(s.Keys) != len(Algorithms) {
		t.Fatalf("got %d keys, want %d", len(s.Keys), len(Algorithms))
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	first := s.Current(ES256).ID

	t.Run("writes nothing when nothing is due", func(t *testing.T) {
		changed, err := s.Reconcile(t0.Add(time.Hour), 30*24*time.Hour, 400*24*time.Hour)
		if err != nil || changed {
			t.Fatalf("changed=%v err=%v, want no change", changed, err)
		}
	})
	t.Run("rotates after the period and keeps the old key as retired", func(t *testing.T) {
		changed, _ := s.Reconcile(t0.Add(31*24*time.Hour), 30*24*time.Hour, 400*24*time.Hour)
		if !changed || s.Current(ES256).ID == first || len(s.Keys) != 2*len(Algorithms) {
			t.Fatalf("changed=%v current=%s keys=%d", changed, s.Current(ES256).ID, len(s.Keys))
		}
	})
	t.Run("drops retired keys once every token they signed has expired", func(t *testing.T) {
		changed, _ := s.Reconcile(t0.Add(440*24*time.Hour), 0, 400*24*time.Hour)
		if !changed || len(s.Keys) != len(Algorithms) {
			t.Fatalf("changed=%v keys=%d, want only current keys", changed, len(s.Keys))
		}
		for _, k := range s.Keys {
			if k.ID == first {
				t.Fatal("the first key is still there")
			}
		}
	})
}

func TestValidateRefusesShortHMACKeys(t *testing.T) {
	s := Set{Keys: []Key{{ID: "h", Algorithm: HS512, Material: make([]byte, 32)}}}
	if err := s.Validate(); err == nil {
		t.Fatal("a 32-byte HS512 key was accepted")
	}
}
