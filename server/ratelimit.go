package server

import (
	"net/http"
	"net/netip"
	"time"

	"github.com/tokensmith/tokensmith/server/internal/httpx"
	"github.com/tokensmith/tokensmith/server/throttle"
)

// RateLimits configure per-source-address and per-client throttling. A zero
// rate disables that limiter; the zero value disables both (library and
// benchmark use). "tokensmith server" and the chart default to the
// throttle.Default* values.
type RateLimits struct {
	// PerIP is requests per second per client address (IPv6: per /64), as
	// found by ClientIP with Options.TrustedProxies, on the token and password
	// endpoints and /oauth/introspect and /oauth/revoke.
	PerIP      float64
	PerIPBurst int
	// PerClient is requests per second per presented client id on the token
	// endpoints, checked before the client's secret.
	PerClient      float64
	PerClientBurst int
	// MaxKeys bounds each limiter's table; default throttle.DefaultMaxKeys.
	MaxKeys int
}

// DefaultRateLimits are the limits of "tokensmith server" and the chart.
func DefaultRateLimits() RateLimits {
	return RateLimits{
		PerIP: throttle.DefaultPerIP, PerIPBurst: throttle.DefaultPerIPBurst,
		PerClient: throttle.DefaultPerClient, PerClientBurst: throttle.DefaultPerClientBurst,
	}
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
