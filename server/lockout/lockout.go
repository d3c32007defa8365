package lockout

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokensmith/tokensmith/server/index"
)

// Defaults of Policy.
const (
	DefaultThreshold  = 10
	DefaultBase       = time.Minute
	DefaultMax        = time.Hour
	DefaultResetAfter = 24 * time.Hour
	DefaultMaxEntries = 100_000
)

// Policy is when and for how long a user is locked. Zero fields take the defaults.
type Policy struct {
	// Threshold is how many consecutive failures lock a user; negative disables the lockout.
	Threshold int
	// Base is the first lock's length; each later lock doubles it, up to Max.
	Base, Max time.Duration
	// ResetAfter forgets a user's failures and back-off after that long without a failure.
	ResetAfter time.Duration
	// MaxEntries bounds how many users this replica remembers.
	MaxEntries int
}

// Enabled reports whether p locks anyone.
func (p Policy) Enabled() bool { return p.Threshold >= 0 }

func (p Policy) withDefaults() Policy {
	if p.Threshold == 0 {
		p.Threshold = DefaultThreshold
	}
	if p.Base <= 0 {
		p.Base = DefaultBase
	}
	if p.Max <= 0 {
		p.Max = DefaultMax
	}
	if p.Max < p.Base {
		p.Max = p.Base
	}
	if p.ResetAfter <= 0 {
		p.ResetAfter = DefaultResetAfter
	}
	if p.MaxEntries <= 0 {
		p.MaxEntries = DefaultMaxEntries
	}
	return p
}

// length is the n-th lock's length (n >= 1).
func (p Policy) length(n int) time.Duration {
	d := p.Base
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// Writer records a lock in the User's status; it runs off the request path.
type Writer interface {
	WriteLock(ctx context.Context, user index.UserRef, until time.Time) error
}

// Lockout implements login.Lockout. Use New; it is safe for concurrent use.
type Lockout struct {
	p      Policy
	w      Writer
	log    logr.Logger
	locks  prometheus.Counter
	mu     sync.Mutex
	users  map[string]*entry
	queue  map[index.UserRef]time.Time
	wake   chan struct{}
	onLock func(index.UserRef, time.Time) // tests
	// snapshot, when set, is watched for this replica's own locks appearing
	// in the index, so that their later removal unlocks even without a login
	// in between.
	snapshot func() *index.Snapshot
	unseen   map[string]bool // own locks the index has not shown yet
}

type entry struct {
	username string
	failures int       // consecutive failures since the last lock or success
	pending  int       // attempts allowed by Check and not yet Recorded
	level    int       // locks so far: the back-off exponent
	armed    bool      // after a lock: the next failure locks again
	until    time.Time // this replica's own lock (the lockedUntil it writes), zero if none
	seen     time.Time // the last lockedUntil the index showed, zero if none
	last     time.Time // last failure
}

// New returns a Lockout that writes locks with w (nil writes nothing).
// Call Run to perform the writes.
func New(p Policy, w Writer, log logr.Logger) *Lockout {
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	return &Lockout{
		p: p.withDefaults(), w: w, log: log,
		locks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tokensmith_user_lockouts_total",
			Help: "Users this replica locked after too many failed password checks.",
		}),
		users:  map[string]*entry{},
		queue:  map[index.UserRef]time.Time{},
		unseen: map[string]bool{},
		wake:   make(chan struct{}, 1),
	}
}

// WatchIndex makes Run look in the index, a few times a second, for this
// replica's own locks: once the index has shown one, its removal from the
// User's status unlocks the user here too. Call it before Run.
func (l *Lockout) WatchIndex(snapshot func() *index.Snapshot) { l.snapshot = snapshot }

// Policy returns the policy in force, defaults applied.
func (l *Lockout) Policy() Policy { return l.p }

// Describe and Collect export the lockouts counter.
func (l *Lockout) Describe(ch chan<- *prometheus.Desc) { l.locks.Describe(ch) }

// Collect implements prometheus.Collector.
func (l *Lockout) Collect(ch chan<- prometheus.Metric) { l.locks.Collect(ch) }

func key(u *index.User) string { return u.Namespace + "/" + u.Name + "/" + u.Username }

// Len is how many users this replica remembers.
func (l *Lockout) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.users)
}

// Check reports whether u is locked at now: by the User's status (as the
// index shows it) or by this replica. When it returns false it has reserved
// one attempt, which Record must settle: at most Threshold attempts (one
// after a lock) are ever in flight, however many arrive at once.
func (l *Lockout) Check(u *index.User, now time.Time) bool {
	k := key(u)
	api := u.LockedUntil
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.users[k]
	if e != nil && l.stale(e, now) {
		delete(l.users, k)
		e = nil
	}
	if e != nil {
		switch {
		case api == nil && !e.seen.IsZero():
			// A lock the index showed is gone from the User's status: an
			// administrator cleared it. Forget everything, own lock included.
			delete(l.users, k)
			e = nil
		case api != nil && !api.Equal(e.seen):
			e.seen = *api
			if !api.Equal(e.until) && now.Before(*api) {
				l.adopt(e)
			}
		}
	}
	if api != nil && now.Before(*api) {
		if e == nil {
			// Another replica's lock: back off from it like from our own.
			e = l.insert(k, u.Username, now)
			e.seen = *api
			l.adopt(e)
		}
		return true
	}
	if e == nil {
		e = l.insert(k, u.Username, now)
		if api != nil {
			e.seen = *api // an old lock that ran out; its removal unlocks nothing
		}
	}
	if now.Before(e.until) || (e.armed && e.pending > 0) || e.failures+e.pending >= l.p.Threshold {
		return true
	}
	e.pending++
	return false
}

// adopt treats a lock another replica set like one of this replica's own.
func (l *Lockout) adopt(e *entry) {
	e.level++
	e.armed = true
	e.failures = 0
}

// Record settles an attempt Check allowed: a success forgets the user, a
// failure counts and may lock.
func (l *Lockout) Record(u *index.User, ok bool, now time.Time) {
	k := key(u)
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.users[k]
	if e == nil {
		if ok {
			return
		}
		e = l.insert(k, u.Username, now)
	}
	if e.pending > 0 {
		e.pending--
	}
	if ok {
		if e.pending == 0 {
			delete(l.users, k)
			return
		}
		*e = entry{username: e.username, pending: e.pending, seen: e.seen}
		return
	}
	e.last = now
	if now.Before(e.until) {
		return // already locked by an attempt that finished first
	}
	e.failures++
	if !e.armed && e.failures < l.p.Threshold {
		return
	}
	e.level++
	e.armed = true
	e.failures = 0
	e.until = now.Add(l.p.length(e.level))
	// status.lockedUntil has whole seconds; round up so that the recorded lock
	// is never shorter than the local one.
	if t := e.until.Truncate(time.Second); !t.Equal(e.until) {
		e.until = t.Add(time.Second)
	}
	e.until = e.until.UTC()
	if l.snapshot != nil {
		l.unseen[k] = true
	}
	l.locks.Inc()
	ref := u.Ref()
	if l.onLock != nil {
		l.onLock(ref, e.until)
	}
	if l.w != nil && ref.Name != "" {
		l.queue[ref] = e.until
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// stale: no lock, nothing in flight and no failure for ResetAfter.
func (l *Lockout) stale(e *entry, now time.Time) bool {
	return e.pending == 0 && !now.Before(e.until) && now.Sub(e.last) >= l.p.ResetAfter
}

// insert adds an entry, first making room: stale entries go, then, if
// still full, entries with no lock of their own and nothing in flight.
func (l *Lockout) insert(k, username string, now time.Time) *entry {
	if len(l.users) >= l.p.MaxEntries {
		for k, e := range l.users {
			if l.stale(e, now) {
				delete(l.users, k)
			}
		}
		for k, e := range l.users {
			if len(l.users) < l.p.MaxEntries {
				break
			}
			if e.pending == 0 && !now.Before(e.until) {
				delete(l.users, k)
			}
		}
	}
	e := &entry{username: username, last: now}
	l.users[k] = e
	return e
}

// Run writes locks to the API server until ctx ends. A write that fails is
// retried every few seconds while its lock lasts.
func (l *Lockout) Run(ctx context.Context) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	var watch <-chan time.Time
	if l.snapshot != nil {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		watch = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-watch:
			l.Observe(time.Now())
			continue
		case <-l.wake:
		case <-retry.C:
		}
		if l.Flush(ctx) > 0 {
			retry.Reset(3 * time.Second)
		}
	}
}

// Observe notes which of this replica's running locks the index (see
// WatchIndex) already shows in the User's status.
func (l *Lockout) Observe(now time.Time) {
	if l.snapshot == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var snap *index.Snapshot
	for k := range l.unseen {
		e := l.users[k]
		if e == nil || e.seen.Equal(e.until) || !now.Before(e.until) {
			delete(l.unseen, k)
			continue
		}
		if snap == nil {
			if snap = l.snapshot(); snap == nil {
				return
			}
		}
		if u := snap.User(e.username); u != nil && key(u) == k && u.LockedUntil != nil && u.LockedUntil.Equal(e.until) {
			e.seen = e.until
			delete(l.unseen, k)
		}
	}
}

// Flush writes every queued lock now and returns how many failed and are
// queued again.
func (l *Lockout) Flush(ctx context.Context) int {
	l.mu.Lock()
	batch := l.queue
	l.queue = map[index.UserRef]time.Time{}
	l.mu.Unlock()
	failed := 0
	for ref, until := range batch {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := l.w.WriteLock(wctx, ref, until)
		cancel()
		if err == nil {
			continue
		}
		l.log.Error(err, "recording a lockout in User status; this replica still enforces it", "user", ref.Namespace+"/"+ref.Name, "lockedUntil", until)
		if ctx.Err() == nil && time.Now().Before(until) {
			l.mu.Lock()
			if _, newer := l.queue[ref]; !newer {
				l.queue[ref] = until
				failed++
			}
			l.mu.Unlock()
		}
	}
	return failed
}

// ChecksInFirstHour is how many password checks, each of which would succeed
// with the right password, a nonstop attacker gets from one replica in the
// first hour of an attack: Threshold, then one as each lock runs out. It is
// the most any hour allows.
func (p Policy) ChecksInFirstHour() int {
	p = p.withDefaults()
	n, at := p.Threshold, time.Duration(0)
	for i := 1; ; i++ {
		at += p.length(i)
		if at >= time.Hour {
			return n
		}
		n++
	}
}
