package password

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestHashAndVerify(t *testing.T) {
	phc, err := Hash("correct horse", Default)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q does not use the OWASP parameters", phc)
	}
	tests := []struct {
		name     string
		password string
		want     bool
	}{
		{"accepts the right password", "correct horse", true},
		{"rejects a wrong password", "correct horsf", false},
		{"rejects the empty password", "", false},
		{"rejects a password longer than MaxLength before hashing", strings.Repeat("a", MaxLength+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Verify(phc, tt.password)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHashUsesAFreshSaltEachTime(t *testing.T) {
	a, _ := Hash("same", Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1})
	b, _ := Hash("same", Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1})
	if a == b {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
}

func TestParseRejectsMalformedAndCostlyHashes(t *testing.T) {
	for _, phc := range []string{
		"",
		"$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=16$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=19456,t=200,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=19456,t=2,p=1$!!!$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$",
	} {
		if _, err := Parse(phc); err == nil {
			t.Errorf("Parse(%q) accepted a malformed or too costly hash", phc)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("$$$$$")
	f.Fuzz(func(t *testing.T, phc string) {
		h, err := Parse(phc)
		if err == nil && h.params.MemoryKiB > 256*1024 {
			t.Fatalf("accepted memory cost %d", h.params.MemoryKiB)
		}
	})
}

func TestHashWaitsForASlot(t *testing.T) {
	if c := cap(hashSlots()); c < 1 || c > maxConcurrentHashes {
		t.Fatalf("hash slots = %d, want 1..%d", c, maxConcurrentHashes)
	}
	for range cap(hashSlots()) {
		hashSlots() <- struct{}{}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := Hash("x", Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1}); err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-done:
		t.Fatal("Hash ran while every slot was taken")
	case <-time.After(50 * time.Millisecond):
	}
	<-hashSlots()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Hash did not run once a slot was free")
	}
	for range cap(hashSlots()) - 1 {
		<-hashSlots()
	}
}

// Issue 15, finding 3: how many argon2id computations run at once follows the
// memory limit, not the core count.
func TestSlotsFollowTheMemoryLimit(t *testing.T) {
	const mib = 1 << 20
	soft := int64(256*mib) / 100 * 75 // the chart's 256Mi limit, as internal/memlimit sets GOMEMLIMIT
	cases := []struct {
		name  string
		limit int64
		p     Params
		most  int
		want  int
	}{
		{"the chart's 256Mi admits 3 default hashes even with 32 cores' worth of slots", soft, Default, 32, 3},
		{"never more than asked for", 4 << 30, Default, 8, 8},
		{"a tiny limit still admits one", 32 * mib, Default, 32, 1},
		{"no limit: as many as asked for", math.MaxInt64, Default, 32, 32},
		{"parallelism multiplies the memory", soft, Params{MemoryKiB: 19456, Iterations: 2, Parallelism: 2}, 32, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Slots(c.limit, c.p, c.most)
			if got != c.want {
				t.Fatalf("Slots = %d, want %d", got, c.want)
			}
			if c.limit != math.MaxInt64 && int64(got)*int64(c.p.MemoryKiB)*1024*int64(c.p.Parallelism) > c.limit/100*MemoryShare && got > 1 {
				t.Fatalf("%d slots exceed %d%% of the limit", got, MemoryShare)
			}
		})
	}
}
