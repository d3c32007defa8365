package throttle

import (
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of "tokensmith server" and the chart. They are far above what an
// application needs (a pod fetches a token when it starts and about once per
// token lifetime) and low enough that one address or one client id cannot
// make more than 50 password or secret guesses a second on one replica.
const (
	// DefaultPerIP is the sustained rate per source address (IPv4, or IPv6 /64), per second.
	DefaultPerIP = 50
	// DefaultPerIPBurst lets 100 requests through at once: a rollout of 100 pods behind one SNAT address.
	DefaultPerIPBurst = 100
	// DefaultPerClient is the sustained rate per presented client id, per second.
	DefaultPerClient = 50
	// DefaultPerClientBurst lets 100 replicas of one application start at once.
	DefaultPerClientBurst = 100
	// DefaultMaxKeys bounds each limiter's table (about 200 bytes a key, so under 15 MiB).
	DefaultMaxKeys = 65536
)

// Limiter is a set of token buckets, one per key. A nil *Limiter allows
// everything. It is safe for concurrent use.
type Limiter struct {
	limit   rate.Limit
	burst   int
	maxKeys int
	// sweepEvery is how long a bucket takes to refill from empty: an entry
	// idle that long is full, the same as a new one, and dropping it loses nothing.
	sweepEvery time.Duration

	mu        sync.Mutex
	buckets   map[string]*rate.Limiter
	lastSweep time.Time
}

// NewLimiter returns a limiter allowing perSecond requests a second per key
// with bursts of burst (at least 1), keeping at most maxKeys keys
// (DefaultMaxKeys when <= 0). perSecond <= 0 disables it: the result is nil.
func NewLimiter(perSecond float64, burst, maxKeys int) *Limiter {
	if perSecond <= 0 || math.IsNaN(perSecond) {
		return nil
	}
	if burst < 1 {
		burst = 1
	}
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	refill := time.Duration(float64(burst) / perSecond * float64(time.Second))
	return &Limiter{
		limit: rate.Limit(perSecond), burst: burst, maxKeys: maxKeys,
		sweepEvery: max(refill, time.Second),
		buckets:    make(map[string]*rate.Limiter),
	}
}

// Allow takes one token from key's bucket at now. When the bucket is empty it
// takes nothing and returns how long until a token is available.
func (l *Limiter) Allow(key string, now time.Time) (retryAfter time.Duration, ok bool) {
	if l == nil {
		return 0, true
	}
	l.mu.Lock()
	if now.Sub(l.lastSweep) >= l.sweepEvery {
		l.sweepLocked(now)
	}
	b, found := l.buckets[key]
	if !found {
		if len(l.buckets) >= l.maxKeys {
			// Every entry is busy (a spray of keys): drop an arbitrary one
			// (map order is random). Memory stays bounded; the dropped key
			// starts again with a full bucket, as a new key does anyway.
			for k := range l.buckets {
				delete(l.buckets, k)
				break
			}
		}
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[key] = b
	}
	l.mu.Unlock()
	r := b.ReserveN(now, 1)
	if !r.OK() {
		return time.Second, false
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return 0, true
	}
	r.CancelAt(now)
	return d, false
}

// Len is the number of keys held.
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// sweepLocked drops every bucket that has refilled completely.
func (l *Limiter) sweepLocked(now time.Time) {
	l.lastSweep = now
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, k)
		}
	}
}

// IPKey is the bucket key of a source address: the address for IPv4, its /64
// for IPv6 (one subscriber or one host usually owns a whole /64, so keying by
// address would give an attacker 2^64 buckets). The zero Addr is "unknown".
func IPKey(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case !a.IsValid():
		return "unknown"
	case a.Is4():
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// MaxClientKey bounds a client key's length: a presented id can be 64 KiB of
// junk; no real client id is this long, so truncation only merges junk.
const MaxClientKey = 256

// ClientKey is the bucket key of a presented client id.
func ClientKey(id string) string {
	if len(id) > MaxClientKey {
		return id[:MaxClientKey]
	}
	return id
}
