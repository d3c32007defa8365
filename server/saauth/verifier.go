package saauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Review is the API server's answer about one token (a TokenReview's status).
type Review struct {
	// Authenticated is false for a token the API server refuses: another
	// issuer, a bad signature, expired, a deleted ServiceAccount or pod.
	Authenticated bool
	// Username is "system:serviceaccount:<namespace>:<name>" when authenticated.
	Username string
	// Audiences are the audiences the API server checked the token against.
	Audiences []string
}

// Reviewer asks the API server whether a token is valid for audience (a
// TokenReview). An error means no answer (the API server unreachable, an
// error status): it never means "refused".
type Reviewer interface {
	Review(ctx context.Context, token, audience string) (Review, error)
}

// Defaults of Config.
const (
	// DefaultMaxAge bounds how long a verdict is used without asking the API
	// server again. The API server answers from its own cache of successful
	// authentications for up to 10s (kube-apiserver's default), so a deleted
	// ServiceAccount or pod is refused at most DefaultMaxAge + 10s after it
	// is gone: 40s, inside the 60s promised.
	DefaultMaxAge = 30 * time.Second
	// DefaultClockSkew is how far in the future nbf and iat may be: the API
	// server that minted the token and this server may disagree by seconds.
	// exp gets no skew: an expired token is refused.
	DefaultClockSkew = 30 * time.Second
	// DefaultMaxEntries bounds the verdict cache (one entry is ~150 bytes).
	DefaultMaxEntries = 20000
	// DefaultMaxReviews bounds the TokenReviews in flight, so that a flood of
	// forged assertions for a bound ServiceAccount cannot flood the API server.
	DefaultMaxReviews = 8
	// DefaultReviewTimeout bounds one TokenReview.
	DefaultReviewTimeout = 5 * time.Second
	// negativeMaxAge is how long a refusal by the API server is remembered, so
	// that one bad token sent in a loop costs one review per negativeMaxAge.
	negativeMaxAge = 5 * time.Second
	// probeInterval is how long after an unanswered review the API server is
	// taken to be down: requests in that time do not wait for it.
	probeInterval = time.Second
)

// Config configures a Verifier. Audience and Reviewer are required.
type Config struct {
	// Audience is the aud a token must carry: the token server's (its issuer
	// URL unless configured otherwise).
	Audience string
	Reviewer Reviewer
	// MaxAge is the longest a verdict is used without a new review while the
	// API server answers; refreshing starts at half of it, in the background,
	// so a token in steady use never waits for the API server. 0: DefaultMaxAge.
	MaxAge time.Duration
	// ClockSkew, MaxEntries, MaxReviews, ReviewTimeout: 0 means the default.
	ClockSkew     time.Duration
	MaxEntries    int
	MaxReviews    int
	ReviewTimeout time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Verifier authenticates ServiceAccount tokens used as client assertions. It
// checks what it can locally (form, audience, time, that the ServiceAccount
// is bound to a client), asks the API server (Reviewer) about a token it has
// no fresh verdict for, and caches the verdict by the token's digest.
type Verifier struct {
	cfg Config
	sem chan struct{}

	mu       sync.Mutex
	cache    map[[sha256.Size]byte]*entry
	inflight map[[sha256.Size]byte]*call

	// downUntil: a review went unanswered; until then no request waits for
	// the API server (cached verdicts are used, new tokens refused at once).
	downUntil time.Time

	reviews, stale atomic.Uint64
}

// entry is a verdict about one token.
type entry struct {
	// a is the token parsed, so that a token in steady use is decoded once,
	// not on every request.
	a        *Assertion
	ok       bool
	checked  time.Time // when the API server gave the verdict
	expiry   time.Time // the token's exp: the entry is useless afterwards
	username string
	// refreshing is set while a background review of this token runs.
	refreshing bool
}

// call is a review in flight that concurrent requests for the same token wait on.
type call struct {
	done chan struct{}
	e    *entry
	err  error
}

// NewVerifier returns a Verifier; it panics without an Audience or a Reviewer.
func NewVerifier(cfg Config) *Verifier {
	if cfg.Audience == "" || cfg.Reviewer == nil {
		panic("saauth: NewVerifier needs an Audience and a Reviewer")
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.MaxReviews <= 0 {
		cfg.MaxReviews = DefaultMaxReviews
	}
	if cfg.ReviewTimeout <= 0 {
		cfg.ReviewTimeout = DefaultReviewTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Verifier{
		cfg:      cfg,
		sem:      make(chan struct{}, cfg.MaxReviews),
		cache:    make(map[[sha256.Size]byte]*entry),
		inflight: make(map[[sha256.Size]byte]*call),
	}
}

// Audience is the aud the Verifier requires.
func (v *Verifier) Audience() string { return v.cfg.Audience }

// Reviews counts the TokenReviews asked so far; Stale counts the requests
// answered from a verdict older than MaxAge because the API server could not
// be asked. Both for metrics and tests.
func (v *Verifier) Reviews() uint64 { return v.reviews.Load() }

// Stale counts the requests answered from a verdict older than MaxAge: see Reviews.
func (v *Verifier) Stale() uint64 { return v.stale.Load() }

// Parse is saauth.Parse for a token the Verifier may have seen: a token with
// a cached verdict comes back from the cache, undecoded.
func (v *Verifier) Parse(raw string) (*Assertion, error) {
	if len(raw) > MaxAssertionLength {
		return nil, refuse(ReasonTooLarge)
	}
	key := sha256.Sum256([]byte(raw))
	v.mu.Lock()
	e := v.cache[key]
	v.mu.Unlock()
	if e != nil && e.a != nil && e.a.Raw == raw {
		return e.a, nil
	}
	a, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	a.key, a.hasKey = key, true
	return a, nil
}

// Check refuses what can be refused without the API server: an assertion
// not meant for this server's audience, expired or not yet valid at now.
func (v *Verifier) Check(a *Assertion) error {
	if !slices.Contains(a.Audiences, v.cfg.Audience) {
		return refuse(ReasonAudience)
	}
	now := v.cfg.Now()
	if !now.Before(a.Expiry) {
		return refuse(ReasonExpired)
	}
	if a.NotBefore.After(now.Add(v.cfg.ClockSkew)) || a.IssuedAt.After(now.Add(v.cfg.ClockSkew)) {
		return refuse(ReasonNotYetValid)
	}
	return nil
}

// Verify authenticates a parsed assertion: Check, then the API server's
// verdict (cached). The caller has checked that a client binds a's
// ServiceAccount before, so that only tokens of bound ServiceAccounts ever
// cost a review. The error is an *Error.
//
// Verdicts: a positive one younger than MaxAge/2 is used as it is; between
// MaxAge/2 and MaxAge it is used and refreshed in the background; older, the
// request waits for a new review. When the API server cannot be asked, a
// positive verdict is used whatever its age (until the token expires) and a
// token without one is refused with ReasonUnavailable: a cached client keeps
// working through an outage, a new one fails closed.
func (v *Verifier) Verify(ctx context.Context, a *Assertion) error {
	if err := v.Check(a); err != nil {
		return err
	}
	key := a.key
	if !a.hasKey {
		key = sha256.Sum256([]byte(a.Raw))
	}
	now := v.cfg.Now()
	v.mu.Lock()
	down := now.Before(v.downUntil)
	e := v.cache[key]
	if e != nil {
		age := now.Sub(e.checked)
		switch {
		case !e.ok && age < negativeMaxAge:
			v.mu.Unlock()
			return refuse(ReasonRejected)
		case e.ok && age < v.cfg.MaxAge/2:
			v.mu.Unlock()
			return v.match(a, e)
		case e.ok && age < v.cfg.MaxAge && !down:
			if !e.refreshing {
				e.refreshing = true
				// Not the request's context: the refresh outlives the request it serves.
				go v.refresh(key, a) //nolint:gosec // G118: deliberately detached, bounded by ReviewTimeout
			}
			v.mu.Unlock()
			return v.match(a, e)
		case e.ok && down:
			// The API server did not answer a moment ago: use the verdict
			// rather than wait for a timeout on every request.
			v.mu.Unlock()
			if age >= v.cfg.MaxAge {
				v.stale.Add(1)
			}
			return v.match(a, e)
		}
	}
	v.mu.Unlock()
	if down {
		return errNoAnswer
	}

	fresh, err := v.review(ctx, key, a)
	if err != nil {
		if e != nil && e.ok && errors.Is(err, errNoAnswer) {
			v.stale.Add(1)
			return v.match(a, e)
		}
		return err
	}
	return v.match(a, fresh)
}

// match checks a verdict against the assertion it is used for.
func (v *Verifier) match(a *Assertion, e *entry) error {
	if !e.ok {
		return refuse(ReasonRejected)
	}
	if e.username != a.Subject() {
		// The API server authenticated the token as another ServiceAccount
		// than its sub claims: never expected, refused all the same.
		return refuse(ReasonRejected)
	}
	return nil
}

var errNoAnswer = &Error{Reason: ReasonUnavailable}

// review asks the API server about a, once for all concurrent requests with
// the same token, and caches the verdict. An unanswered review is errNoAnswer.
func (v *Verifier) review(ctx context.Context, key [sha256.Size]byte, a *Assertion) (*entry, error) {
	v.mu.Lock()
	c := v.inflight[key]
	if c == nil {
		c = &call{done: make(chan struct{})}
		v.inflight[key] = c
		v.mu.Unlock()
		c.e, c.err = v.ask(ctx, a)
		v.mu.Lock()
		delete(v.inflight, key)
		if c.err == nil {
			v.store(key, c.e)
		}
		close(c.done)
		v.mu.Unlock()
	} else {
		v.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			return nil, errNoAnswer
		}
	}
	return c.e, c.err
}

// refresh reviews a in the background and replaces its verdict.
func (v *Verifier) refresh(key [sha256.Size]byte, a *Assertion) {
	e, err := v.ask(context.Background(), a)
	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil {
		if old := v.cache[key]; old != nil {
			old.refreshing = false
		}
		return
	}
	v.store(key, e)
}

// ask makes one TokenReview, waiting for a free slot at most until ctx or
// the review timeout ends.
func (v *Verifier) ask(ctx context.Context, a *Assertion) (*entry, error) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.ReviewTimeout)
	defer cancel()
	select {
	case v.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, errNoAnswer
	}
	defer func() { <-v.sem }()
	v.reviews.Add(1)
	r, err := v.cfg.Reviewer.Review(ctx, a.Raw, v.cfg.Audience)
	v.mu.Lock()
	if err != nil {
		v.downUntil = v.cfg.Now().Add(probeInterval)
	} else {
		v.downUntil = time.Time{}
	}
	v.mu.Unlock()
	if err != nil {
		return nil, errNoAnswer
	}
	e := &entry{a: a, checked: v.cfg.Now(), expiry: a.Expiry}
	if r.Authenticated && slices.Contains(r.Audiences, v.cfg.Audience) {
		e.ok, e.username = true, r.Username
	}
	return e, nil
}

// store caches e under key, making room first: expired entries go, then
// arbitrary ones (map order) if the cache is still full. A cache that is
// full of live tokens costs reviews, never correctness. Callers hold mu.
func (v *Verifier) store(key [sha256.Size]byte, e *entry) {
	if _, ok := v.cache[key]; !ok && len(v.cache) >= v.cfg.MaxEntries {
		now := v.cfg.Now()
		for k, old := range v.cache {
			if !now.Before(old.expiry) || !old.ok && now.Sub(old.checked) >= negativeMaxAge {
				delete(v.cache, k)
			}
		}
		for k := range v.cache {
			if len(v.cache) < v.cfg.MaxEntries {
				break
			}
			delete(v.cache, k)
		}
	}
	v.cache[key] = e
}
