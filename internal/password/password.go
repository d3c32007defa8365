// Package password hashes and verifies user passwords with argon2id, stored as
// PHC strings ($argon2id$v=19$m=19456,t=2,p=1$salt$hash), the OWASP settings.
//
// The controller hashes (only when a password changes); the token server only
// verifies. Verification of a PHC string accepts any parameters within sane
// bounds so that a later change of the defaults keeps old hashes working.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters.
type Params struct {
	MemoryKiB   uint32
	Iterations  uint32
	Parallelism uint8
}

// Default is OWASP's recommended argon2id configuration (m=19 MiB, t=2, p=1).
var Default = Params{MemoryKiB: 19456, Iterations: 2, Parallelism: 1}

const (
	saltLen = 16
	keyLen  = 32
	// MaxLength bounds what is hashed at all: longer passwords are rejected
	// before any work is done, so a 1 MB password costs nothing.
	MaxLength = 1024
)

var b64 = base64.RawStdEncoding

// ErrMalformed means a stored hash is not an argon2id PHC string this package can verify.
var ErrMalformed = errors.New("password: malformed argon2id hash")

// hashSlots bounds how many Hash calls run at once in the process: each takes
// p.MemoryKiB (19 MiB by default) for its duration, and the controller
// reconciles several Users in parallel. More hashes than cores at once would
// only add memory, not throughput. It is sized on first use, after the
// process has set its memory limit (internal/memlimit).
var hashSlots = sync.OnceValue(func() chan struct{} {
	return make(chan struct{}, Slots(debug.SetMemoryLimit(-1), Default, min(runtime.GOMAXPROCS(0), maxConcurrentHashes)))
})

// maxConcurrentHashes caps hashSlots on large nodes: 4 × 19 MiB.
const maxConcurrentHashes = 4

// MemoryShare is the percentage of the process's memory limit that argon2id
// work (hashing in the controller, verification slots in the server) may
// hold at once; the rest is for the caches, requests and the GC's slack.
const MemoryShare = 40

// slotOverhead is what one argon2id call holds besides its memory parameter
// (the password, salt, output and the goroutine), rounded up generously.
const slotOverhead = 1 << 20

// Slots is how many argon2id computations with params p may run at once
// within limit, the process's soft memory limit in bytes (math.MaxInt64 or
// 0: none): MemoryShare percent of it, at least 1, and never more than most.
func Slots(limit int64, p Params, most int) int {
	if most < 1 {
		most = 1
	}
	if limit <= 0 || limit == math.MaxInt64 {
		return most
	}
	per := int64(p.MemoryKiB)*1024*int64(max(p.Parallelism, 1)) + slotOverhead
	n := limit / 100 * MemoryShare / per
	return int(max(1, min(n, int64(most))))
}

// ConcurrentHashes is how many Hash calls may run at once in this process.
// The first call (or Hash) fixes it: call it after setting the memory limit.
func ConcurrentHashes() int { return cap(hashSlots()) }

// Hash returns the PHC string of password under p with a fresh random salt.
// At most Slots(memory limit, Default, min(GOMAXPROCS, 4)) hashes run at
// once; further callers wait.
func Hash(password string, p Params) (string, error) {
	slots := hashSlots()
	slots <- struct{}{}
	defer func() { <-slots }()
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: reading random salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Iterations, p.Parallelism, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Hashed is a parsed PHC string, ready to verify against.
type Hashed struct {
	params Params
	salt   []byte
	key    []byte
}

// Parse parses a PHC argon2id string. Parameters are bounded so that a
// tampered verifier cannot make the server burn unbounded memory or CPU.
func Parse(phc string) (*Hashed, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return nil, ErrMalformed
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Iterations, &p.Parallelism); err != nil {
		return nil, ErrMalformed
	}
	if p.MemoryKiB < 8 || p.MemoryKiB > 256*1024 || p.Iterations < 1 || p.Iterations > 16 || p.Parallelism < 1 || p.Parallelism > 8 {
		return nil, ErrMalformed
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > 64 {
		return nil, ErrMalformed
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return nil, ErrMalformed
	}
	return &Hashed{params: p, salt: salt, key: key}, nil
}

// Verify reports whether password matches, in time independent of where it differs.
func (h *Hashed) Verify(password string) bool {
	if len(password) > MaxLength {
		return false
	}
	got := argon2.IDKey([]byte(password), h.salt, h.params.Iterations, h.params.MemoryKiB, h.params.Parallelism, uint32(len(h.key))) //nolint:gosec // Parse bounds len(h.key) to 64
	return subtle.ConstantTimeCompare(got, h.key) == 1
}

// Verify parses phc and checks password against it.
func Verify(phc, password string) (bool, error) {
	h, err := Parse(phc)
	if err != nil {
		return false, err
	}
	return h.Verify(password), nil
}
