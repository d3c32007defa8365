package memlimit

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/tokensmith/tokensmith/internal/password"
)

func TestContainerLimit(t *testing.T) {
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			if v, ok := m[name]; ok {
				return []byte(v), nil
			}
			return nil, os.ErrNotExist
		}
	}
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == envLimit {
				return v
			}
			return ""
		}
	}
	cases := []struct {
		name   string
		env    string
		files  map[string]string
		want   int64
		source string
	}{
		{"the chart's resourceFieldRef wins", "268435456", map[string]string{"/sys/fs/cgroup/memory.max": "1073741824\n"}, 268435456, "env"},
		{"reads cgroup v2 memory.max", "", map[string]string{"/sys/fs/cgroup/memory.max": "268435456\n"}, 268435456, "cgroup"},
		{"cgroup v2 max means none", "", map[string]string{"/sys/fs/cgroup/memory.max": "max\n"}, 0, ""},
		{"reads cgroup v1", "", map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "536870912"}, 536870912, "cgroup"},
		{"cgroup v1's huge value means none", "", map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712"}, 0, ""},
		{"a malformed variable falls back to the cgroup", "lots", map[string]string{"/sys/fs/cgroup/memory.max": "1000"}, 1000, "cgroup"},
		{"nothing known is no limit", "", nil, 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, source := containerLimit(env(c.env), files(c.files))
			if got != c.want || source != c.source {
				t.Fatalf("got %d %q, want %d %q", got, source, c.want, c.source)
			}
		})
	}
}

// Issue 15, finding 3, the controller's side: in a fresh process with 16
// cores' worth of GOMAXPROCS and the chart's 256Mi limit, Apply sets
// GOMEMLIMIT to 75% of it and the argon2id hash slots (password.Hash, the
// controller) and verification slots (the server's default) fit in it.
func TestApplySizesArgon2WorkToTheContainerLimit(t *testing.T) {
	if os.Getenv("MEMLIMIT_TEST_CHILD") == "1" {
		soft, source := Apply()
		fmt.Printf("soft=%d source=%s hashes=%d logins=%d\n", soft, source,
			password.ConcurrentHashes(), password.Slots(current(), password.Default, 2*runtime.GOMAXPROCS(0)))
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestApplySizesArgon2WorkToTheContainerLimit$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MEMLIMIT_TEST_CHILD=1", "GOMAXPROCS=16", envLimit+"=268435456", "GOMEMLIMIT=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := fmt.Sprintf("soft=%d source=env hashes=3 logins=3", int64(268435456)/100*75)
	if !strings.Contains(string(out), want) {
		t.Fatalf("child said %q, want %q", out, want)
	}
}
