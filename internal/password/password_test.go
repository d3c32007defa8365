package password

import (
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
	if c := cap(hashSlots); c < 1 || c > maxConcurrentHashes {
		t.Fatalf("hash slots = %d, want 1..%d", c, maxConcurrentHashes)
	}
	for range cap(hashSlots) {
		hashSlots <- struct{}{}
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
	<-hashSlots
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Hash did not run once a slot was free")
	}
	for range cap(hashSlots) - 1 {
		<-hashSlots
	}
}
