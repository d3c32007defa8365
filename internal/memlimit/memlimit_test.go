package memlimit

import (
	"os"
	"testing"
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
			if k == EnvLimit {
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
			got, source := ContainerLimit(env(c.env), files(c.files))
			if got != c.want || source != c.source {
				t.Fatalf("got %d %q, want %d %q", got, source, c.want, c.source)
			}
		})
	}
}
