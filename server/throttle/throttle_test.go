package throttle

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestLimiter(t *testing.T) {
	t.Run("allows the burst, then refuses with the time until the next token", func(t *testing.T) {
		l := NewLimiter(2, 3, 0) // a token every 500ms
		for i := range 3 {
			if _, ok := l.Allow("a", t0); !ok {
				t.Fatalf("request %d of the burst refused", i)
			}
		}
		retry, ok := l.Allow("a", t0)
		if ok || retry != 500*time.Millisecond {
			t.Fatalf("4th request: ok=%v retry=%v, want refused after 500ms", ok, retry)
		}
		// A refusal takes no token: the wait does not grow with each refused request.
		if retry, _ := l.Allow("a", t0); retry != 500*time.Millisecond {
			t.Fatalf("refused requests consumed tokens: retry=%v", retry)
		}
		if _, ok := l.Allow("a", t0.Add(499*time.Millisecond)); ok {
			t.Fatal("allowed before the token arrived")
		}
		if _, ok := l.Allow("a", t0.Add(500*time.Millisecond)); !ok {
			t.Fatal("refused once the token arrived")
		}
	})
	t.Run("keys have separate buckets", func(t *testing.T) {
		l := NewLimiter(1, 1, 0)
		if _, ok := l.Allow("a", t0); !ok {
			t.Fatal("a refused")
		}
		if _, ok := l.Allow("b", t0); !ok {
			t.Fatal("b refused because of a")
		}
		if _, ok := l.Allow("a", t0); ok {
			t.Fatal("a allowed twice")
		}
	})
	t.Run("a zero rate disables the limiter and nil allows everything", func(t *testing.T) {
		l := NewLimiter(0, 10, 0)
		if l != nil {
			t.Fatal("NewLimiter(0) is not nil")
		}
		for range 1000 {
			if _, ok := l.Allow("a", t0); !ok {
				t.Fatal("nil limiter refused")
			}
		}
	})
}

func TestLimiterMemoryIsBounded(t *testing.T) {
	t.Run("a spray of keys never holds more than maxKeys", func(t *testing.T) {
		l := NewLimiter(1, 5, 100)
		for i := range 10000 {
			l.Allow(fmt.Sprintf("spray-%d", i), t0) // same instant: no bucket has refilled
			if n := l.Len(); n > 100 {
				t.Fatalf("after %d keys the table holds %d", i+1, n)
			}
		}
	})
	t.Run("idle buckets are swept once they have refilled", func(t *testing.T) {
		l := NewLimiter(10, 10, 0) // refills from empty in 1s
		for i := range 500 {
			l.Allow(fmt.Sprintf("k%d", i), t0)
		}
		if l.Len() != 500 {
			t.Fatalf("Len = %d", l.Len())
		}
		l.Allow("late", t0.Add(2*time.Second))
		if n := l.Len(); n != 1 {
			t.Fatalf("after the sweep %d keys remain, want only the new one", n)
		}
	})
	t.Run("a bucket still refilling survives the sweep and stays throttled", func(t *testing.T) {
		l := NewLimiter(1, 2, 0) // refills from empty in 2s; sweeps at most every 2s
		l.Allow("first", t0)     // sweeps the empty table at t0
		l.Allow("hot", t0.Add(time.Second))
		l.Allow("hot", t0.Add(time.Second)) // empty
		l.Allow("other", t0.Add(2*time.Second))
		if l.Len() != 2 { // "first" is full and swept; "hot" holds one token and stays
			t.Fatalf("Len = %d, want 2 (hot and other)", l.Len())
		}
		if _, ok := l.Allow("hot", t0.Add(2*time.Second)); !ok {
			t.Fatal("the refilled token was refused")
		}
		if _, ok := l.Allow("hot", t0.Add(2*time.Second)); ok {
			t.Fatal("the sweep forgot a throttled key: it got a fresh burst")
		}
	})
}

func TestIPKey(t *testing.T) {
	cases := []struct{ name, addr, want string }{
		{"IPv4 is keyed by address", "192.0.2.7", "192.0.2.7"},
		{"IPv4-mapped IPv6 is keyed as IPv4", "::ffff:192.0.2.7", "192.0.2.7"},
		{"IPv6 is keyed by /64", "2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"},
		{"two addresses of one /64 share a key", "2001:db8:1:2::1", "2001:db8:1:2::/64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := IPKey(netip.MustParseAddr(c.addr)); got != c.want {
				t.Fatalf("IPKey(%s) = %q, want %q", c.addr, got, c.want)
			}
		})
	}
	if got := IPKey(netip.Addr{}); got != "unknown" {
		t.Fatalf("zero Addr: %q", got)
	}
}

func TestClientKeyIsBounded(t *testing.T) {
	long := string(make([]byte, 64<<10))
	if got := ClientKey(long); len(got) != MaxClientKey {
		t.Fatalf("len = %d", len(got))
	}
	if ClientKey("billing") != "billing" {
		t.Fatal("short ids change")
	}
}
