package randtest

import (
	"crypto/rand"
	"testing"
)

// TestRequireRandomBitsCatchesWeakGenerators runs the check against sources
// that must fail (a counter, a constant byte, short values) and one that must
// pass (crypto/rand).
func TestRequireRandomBitsCatchesWeakGenerators(t *testing.T) {
	draw := func(gen func(i int) []byte) [][]byte {
		out := make([][]byte, Samples)
		for i := range out {
			out[i] = gen(i)
		}
		return out
	}
	cases := map[string]struct {
		samples [][]byte
		fail    bool
	}{
		"crypto/rand": {samples: draw(func(int) []byte { b := make([]byte, 16); _, _ = rand.Read(b); return b })},
		"counter": {fail: true, samples: draw(func(i int) []byte {
			b := make([]byte, 16)
			b[0], b[1] = byte(i), byte(i>>8)
			return b
		})},
		"one constant byte": {fail: true, samples: draw(func(int) []byte { b := make([]byte, 16); _, _ = rand.Read(b); b[7] = 0x5a; return b })},
		"too short":         {fail: true, samples: draw(func(int) []byte { b := make([]byte, 15); _, _ = rand.Read(b); return b })},
		"repeats":           {fail: true, samples: draw(func(int) []byte { b := make([]byte, 16); _, _ = rand.Read(b[:1]); return b })},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			rec := &recorder{TB: t}
			func() {
				defer func() { _ = recover() }()
				RequireRandomBits(rec, name, c.samples, 16)
			}()
			if rec.failed != c.fail {
				t.Errorf("failed = %v, want %v (%s)", rec.failed, c.fail, rec.msg)
			}
		})
	}
}

// recorder turns Fatalf into a recorded failure and a panic that stops the
// check, so that a failing check can be asserted without failing the test.
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, _ ...any) {
	r.failed = true
	r.msg = format
	panic(r)
}
