package index

import (
	"slices"
	"strings"
	"sync"
	"unique"
)

// Verifiers repeat a few values many times over: the namespace of the
// objects, the token format, the same grant types and scopes. Parse holds
// each distinct value once instead of once per verifier: with 100,000 clients
// and 100,000 users, about a fifth of the parsed entries' heap. Nothing
// changes a verifier's strings or slices once parsed (snapshots are shared by
// every request already), so sharing them between verifiers is as safe.

// internString returns the one copy of s the process keeps.
func internString(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}

// maxInternedSlices bounds the slice table: past it (thousands of distinct
// scope sets), slices are kept as parsed, as before.
const maxInternedSlices = 4096

var internedSlices = struct {
	sync.Mutex
	m map[string][]string
}{m: map[string][]string{}}

// internSlice returns a slice equal to ss, shared with every other equal
// slice interned; nil stays nil and empty stays empty (omitempty fields tell
// the two apart nowhere, but equality is kept anyway).
func internSlice(ss []string) []string {
	if len(ss) == 0 {
		return ss
	}
	key := strings.Join(ss, "\x00")
	internedSlices.Lock()
	defer internedSlices.Unlock()
	if s, ok := internedSlices.m[key]; ok {
		if slices.Equal(s, ss) {
			return s
		}
		return ss // a value with a NUL in it: not worth a table of its own
	}
	if len(internedSlices.m) >= maxInternedSlices {
		return ss
	}
	// make's capacity is the length: an append by a reader copies instead of
	// writing into another verifier's slice.
	s := make([]string, len(ss))
	for i, v := range ss {
		s[i] = internString(v)
	}
	internedSlices.m[internString(key)] = s
	return s
}
