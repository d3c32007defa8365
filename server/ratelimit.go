package server

import (
	"net/http"
	"net/netip"
	"time"

	"github.com/tokensmith/tokensmith/server/devicelogin"
	"github.com/tokensmith/tokensmith/server/oauth2"
	"github.com/tokensmith/tokensmith/server/resource"
	"github.com/tokensmith/tokensmith/server/session"
	"github.com/tokensmith/tokensmith/server/throttle"
	"github.com/tokensmith/tokensmith/server/v1token"
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

// AllowClient implements httpx.ClientLimiter. Session client ids are numbers
// of their own namespace, kept apart from the other dialects' client ids.
func (l *limits) AllowClient(dialect, id string) (time.Duration, bool) {
	key := throttle.ClientKey(id)
	if dialect == session.Dialect {
		key = "numeric:" + key
	}
	retry, ok := l.client.Allow(key, l.now())
	if !ok {
		l.metrics.throttled.WithLabelValues(dialect, limiterClient).Inc()
	}
	return retry, ok
}

// tooManyRequests returns the 429 writer of the endpoint at path, of the
// given dialect (dialectOf(path)), when the per-IP limit applies to it: the
// endpoints that check passwords or client secrets. JWKS, metadata and
// /auth/verify check neither and are left alone (an ingress controller calls
// /auth/verify for every request it serves).
func tooManyRequests(dialect, path string) func(http.ResponseWriter, time.Duration) {
	switch dialect {
	case session.Dialect:
		return session.Shape.TooManyRequests
	case v1token.Dialect:
		return v1token.Shape.TooManyRequests
	case devicelogin.Dialect:
		return devicelogin.Shape.TooManyRequests
	case oauth2.Dialect:
		return oauth2.Shape.TooManyRequests
	}
	if path == resource.PathIntrospect || path == resource.PathRevoke {
		return resource.TooManyRequests
	}
	return nil
}

// limitIP answers 429 and returns false when client, the source address of a
// request for path of the given dialect, is over its limit.
func (l *limits) limitIP(w http.ResponseWriter, path, dialect string, client netip.Addr) bool {
	if l.ip == nil {
		return true
	}
	write := tooManyRequests(dialect, path)
	if write == nil {
		return true
	}
	retry, ok := l.ip.Allow(throttle.IPKey(client), l.now())
	if ok {
		return true
	}
	l.metrics.throttled.WithLabelValues(dialect, limiterIP).Inc()
	write(w, retry)
	return false
}
