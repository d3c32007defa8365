package server

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tokensmith/tokensmith/server/index"
	"github.com/tokensmith/tokensmith/server/saauth"
)

// metrics implements httpx.Metrics on a private registry.
type metrics struct {
	registry *prometheus.Registry
	issued   *prometheus.CounterVec
	failed   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// throttled counts 429s by dialect and limiter ("ip" or "client").
	throttled *prometheus.CounterVec
	// propagation is how long verifier changes took to be served here.
	propagation prometheus.Histogram

	// The children of issued and latency that every request uses, by label
	// values (see children).
	issuedBy  children[[2]string, prometheus.Counter]
	latencyBy children[[3]string, prometheus.Observer]
}

// children memoizes a metric vector's children by label values: a
// WithLabelValues call checks the values' UTF-8, hashes them and takes the
// vector's read lock, on every request; a hit here is one atomic load and a
// map lookup. The map is copied on a miss, which happens once per label
// combination: the labels come from fixed sets (methodLabel, statusLabel,
// the dialects' grants and areas), and no child is ever deleted.
type children[K comparable, V any] struct {
	m  atomic.Pointer[map[K]V]
	mu sync.Mutex
}

func (c *children[K, V]) get(k K, child func(K) V) V {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	next := make(map[K]V, 1)
	if old != nil {
		next = make(map[K]V, len(*old)+1)
		for ko, vo := range *old {
			next[ko] = vo
		}
	}
	v := child(k)
	next[k] = v
	c.m.Store(&next)
	return v
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokensmith_tokens_issued_total", Help: "Tokens issued, by dialect and grant.",
		}, []string{"dialect", "grant"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokensmith_token_failures_total", Help: "Token requests refused, by dialect, grant and wire error code.",
		}, []string{"dialect", "grant", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tokensmith_http_request_duration_seconds",
			Help:    "Latency of token server requests, by dialect, method and status code.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"dialect", "method", "code"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokensmith_throttled_requests_total", Help: "Requests answered 429 by a rate limit, by dialect and limiter (ip or client).",
		}, []string{"dialect", "limiter"}),
		propagation: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tokensmith_credential_propagation_seconds",
			Help: "Time from the controller's change of a verifier to this replica serving it; the controller's --propagation-allowance must stay above it.",
			// Up to and past the default allowance (1s): the tail is what matters.
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	m.registry.MustRegister(m.issued, m.failed, m.latency, m.throttled, m.propagation,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) Issued(dialect, grant string) {
	m.issuedBy.get([2]string{dialect, grant}, m.issuedChild).Inc()
}

func (m *metrics) issuedChild(k [2]string) prometheus.Counter {
	return m.issued.WithLabelValues(k[0], k[1])
}

// observeLatency is latency.WithLabelValues(dialect, method, code).Observe(seconds).
func (m *metrics) observeLatency(dialect, method, code string, seconds float64) {
	m.latencyBy.get([3]string{dialect, method, code}, m.latencyChild).Observe(seconds)
}

func (m *metrics) latencyChild(k [3]string) prometheus.Observer {
	return m.latency.WithLabelValues(k[0], k[1], k[2])
}

func (m *metrics) Failed(dialect, grant, reason string) {
	m.failed.WithLabelValues(dialect, grant, reason).Inc()
}

// registerIndexSize exports how many clients and users the index serves, read
// at scrape time from the current snapshot.
func (m *metrics) registerIndexSize(snapshot func() *index.Snapshot) {
	for _, kind := range []string{"clients", "users"} {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "tokensmith_index_entries",
			Help:        "Credentials in the token server's in-memory index, by kind.",
			ConstLabels: prometheus.Labels{"kind": kind},
		}, func() float64 {
			clients, users := snapshot().Counts()
			if kind == "clients" {
				return float64(clients)
			}
			return float64(users)
		}))
	}
}

// registerAssertions exports how often ServiceAccount tokens cost the API
// server a TokenReview, and how often a verdict older than its maximum age
// was used because the API server did not answer (an outage).
func (m *metrics) registerAssertions(v *saauth.Verifier) {
	if v == nil {
		return
	}
	m.registry.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tokensmith_serviceaccount_token_reviews_total", Help: "TokenReviews asked to verify ServiceAccount tokens sent as client assertions.",
		}, func() float64 { return float64(v.Reviews()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tokensmith_serviceaccount_stale_verdicts_total", Help: "Client assertions accepted on a verdict older than its maximum age because the API server did not answer.",
		}, func() float64 { return float64(v.Stale()) }),
	)
}
