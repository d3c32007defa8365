// Package randtest checks, in tests, that generated values carry the entropy
// they claim: every value distinct and every bit position set about half the
// time. A generator that skips crypto/rand, truncates its output or leaves
// bytes constant fails both checks with overwhelming probability, while a
// correct one passes all but once in about 10^12 runs (the 7-sigma bound).
package randtest

import (
	"math"
	"testing"
)

// Samples is how many values a check should draw: enough for a 7-sigma
// bound on each bit's count to be a tight band (2000 +- 156).
const Samples = 4000

// RequireRandomBits fails t unless every sample has exactly wantBytes bytes,
// all samples differ, and each of the wantBytes*8 bit positions is set in a
// share of samples within 7 standard deviations of one half.
func RequireRandomBits(t testing.TB, what string, samples [][]byte, wantBytes int) {
	t.Helper()
	if len(samples) < 1000 {
		t.Fatalf("%s: need at least 1000 samples, got %d", what, len(samples))
	}
	seen := make(map[string]bool, len(samples))
	ones := make([]int, wantBytes*8)
	for i, s := range samples {
		if len(s) != wantBytes {
			t.Fatalf("%s: sample %d has %d bytes (%d bits), want %d bytes (%d bits)", what, i, len(s), len(s)*8, wantBytes, wantBytes*8)
		}
		if seen[string(s)] {
			t.Fatalf("%s: sample %d repeats an earlier value", what, i)
		}
		seen[string(s)] = true
		for bit := range ones {
			if s[bit/8]&(1<<(bit%8)) != 0 {
				ones[bit]++
			}
		}
	}
	n := float64(len(samples))
	tolerance := 7 * math.Sqrt(n) / 2
	for bit, c := range ones {
		if math.Abs(float64(c)-n/2) > tolerance {
			t.Fatalf("%s: bit %d is set in %d of %d samples; a uniform source sets it in %.0f +- %.0f", what, bit, c, len(samples), n/2, tolerance)
		}
	}
}
