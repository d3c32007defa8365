package server

import (
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
	}
	m.registry.MustRegister(m.issued, m.failed, m.latency, m.throttled,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) Issued(dialect, grant string) { m.issued.WithLabelValues(dialect, grant).Inc() }

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
