// Package memlimit sets the Go runtime's soft memory limit (GOMEMLIMIT) from
// the container's memory limit, and tells memory-hungry work (argon2id, 19 MiB
// a hash) how much it may use. Without it the runtime knows nothing of the
// container limit, and the work admitted scales with GOMAXPROCS (the node's
// cores), not with the memory the pod may use (issue 15, finding 3).
package memlimit

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// envLimit is the container's memory limit in bytes. The Helm chart sets it
// with a resourceFieldRef to limits.memory; without it the cgroup's limit is
// read (cgroup v2 memory.max, then v1 memory.limit_in_bytes).
const envLimit = "TOKENSMITH_MEMORY_LIMIT"

// headroom is the percentage of the container limit left outside the Go
// runtime's memory: the binary's own pages (about 50 MiB resident) and
// kernel buffers. GOMEMLIMIT is set to (100-headroom)% of the limit. The GC
// lets the heap grow up to GOMEMLIMIT when allocation is heavy (argon2id
// allocates 19 MiB per password check), so 10% (192 MiB heap + 50 MiB text)
// was measured over a 256Mi limit; 25% stays under it.
const headroom = 25

// cgroupFiles are read in order; the first that names a limit wins.
var cgroupFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// containerLimit returns the container's memory limit in bytes and where it
// came from ("env" or "cgroup"), or 0 when there is none.
func containerLimit(getenv func(string) string, readFile func(string) ([]byte, error)) (int64, string) {
	if v := strings.TrimSpace(getenv(envLimit)); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			return n, "env"
		}
	}
	for _, f := range cgroupFiles {
		b, err := readFile(f)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		// "max" (v2) or a page-rounded MaxInt64 (v1) mean no limit.
		if err == nil && n > 0 && n < 1<<60 {
			return n, "cgroup"
		}
	}
	return 0, ""
}

// Apply sets the runtime's soft memory limit to (100-headroom)% of the
// container limit, unless GOMEMLIMIT was set explicitly (the runtime already
// honours it) or there is no limit. It returns the soft limit in effect and
// where it came from ("GOMEMLIMIT", "env", "cgroup"; "" with math.MaxInt64
// when there is none).
func Apply() (int64, string) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return current(), "GOMEMLIMIT"
	}
	limit, source := containerLimit(os.Getenv, os.ReadFile)
	if limit == 0 {
		return current(), ""
	}
	soft := limit / 100 * (100 - headroom)
	debug.SetMemoryLimit(soft)
	return soft, source
}

// current is the runtime's soft memory limit: math.MaxInt64 when none is set.
func current() int64 { return debug.SetMemoryLimit(-1) }
