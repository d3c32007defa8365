package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokensmith/tokensmith/server/login"
)

// registerLockout exports the lockout's own metrics
// (tokensmith_user_lockouts_total for server/lockout), if it has any.
func (m *metrics) registerLockout(l login.Lockout) {
	if c, ok := l.(prometheus.Collector); ok {
		m.registry.MustRegister(c)
	}
}
