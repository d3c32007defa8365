package server

import (
	"net/http"
	"net/netip"
	"time"

	"github.com/tokensmith/tokensmith/server/internal/httpx"
	"github.com/tokensmith/tokensmith/server/throttle"
)

// RateLimits configure per-source-address and per-client throttling. Like
// every option struct here, a zero field means the production default (the
// throttle.Default* values of "tokensmith server" and the chart) and "off" is
// spelled out: a rate of RateLimitOff (any negative rate) disables that
// limiter, and NoRateLimits disables both (tests, benchmarks, tokensmith-local).
type RateLimits struct {
	// PerIP is requests per second per client address (IPv6: per /64), as
	// found by ClientIP with Options.TrustedProxies, on the token and password
	// endpoints and /oauth/introspect and /oauth/revoke.
	// Zero means throttle.DefaultPerIP; PerIPBurst zero, throttle.DefaultPerIPBurst.
	PerIP      float64
	PerIPBurst int
	// PerClient is requests per second per presented client id on the token
	// endpoints, checked before the client's secret. Zero means
	// throttle.DefaultPerClient; PerClientBurst zero, throttle.DefaultPerClientBurst.
	PerClient      float64
	PerClientBurst int
	// MaxKeys bounds each limiter's table; default throttle.DefaultMaxKeys.
	MaxKeys int
}

// RateLimitOff as a RateLimits rate disables that limiter.
const RateLimitOff = -1

// DefaultRateLimits are the limits of "tokensmith server" and the chart: what
// the zero RateLimits means, spelled out for flags' defaults.
func DefaultRateLimits() RateLimits {
	return RateLimits{
		PerIP: throttle.DefaultPerIP, PerIPBurst: throttle.DefaultPerIPBurst,
		PerClient: throttle.DefaultPerClient, PerClientBurst: throttle.DefaultPerClientBurst,
	}
}

// NoRateLimits throttles nothing.
func NoRateLimits() RateLimits {
	return RateLimits{PerIP: RateLimitOff, PerClient: RateLimitOff}
}

// withDefaults replaces o's zero fields by DefaultRateLimits'.
func (o RateLimits) withDefaults() RateLimits {
	d := DefaultRateLimits()
	if o.PerIP == 0 {
		o.PerIP = d.PerIP
	}
	if o.PerIPBurst == 0 {
		o.PerIPBurst = d.PerIPBurst
	}
	if o.PerClient == 0 {
		o.PerClient = d.PerClient
	}
	if o.PerClientBurst == 0 {
		o.PerClientBurst = d.PerClientBurst
	}
	return o
}

// Limiter names in the throttled-requests metric.
const (
	limiterIP     = "ip"
	limiterClient = "client"
)

// limits applies RateLimits; it is the dialects' httpx.ClientLimiter.
type limits struct {
	ip, client *throttle.Limiter
	now        func() time.Time
	metrics    *metrics
}

func newLimits(o RateLimits, now func() time.Time, m *metrics) *limits {
	o = o.withDefaults()
	return &limits{
		ip:      throttle.NewLimiter(o.PerIP, o.PerIPBurst, o.MaxKeys),
		client:  throttle.NewLimiter(o.PerClient, o.PerClientBurst, o.MaxKeys),
		now:     now,
		metrics: m,
	}
}

// AllowClient implements httpx.ClientLimiter.
func (l *limits) AllowClient(dialect, id string) (time.Duration, bool) {
	retry, ok := l.client.Allow(throttle.ClientKey(id), l.now())
	if !ok {
		l.metrics.throttled.WithLabelValues(dialect, limiterClient).Inc()
	}
	return retry, ok
}

// limitIP answers 429 in the area's shape and returns false when client, the
// source address of a request to a route of a that declared the limit, is
// over its limit.
func (l *limits) limitIP(w http.ResponseWriter, a *httpx.Area, client netip.Addr) bool {
	if l.ip == nil {
		return true
	}
	retry, ok := l.ip.Allow(throttle.IPKey(client), l.now())
	if ok {
		return true
	}
	l.metrics.throttled.WithLabelValues(a.Name, limiterIP).Inc()
	a.Shape.TooManyRequests(w, retry)
	return false
}
