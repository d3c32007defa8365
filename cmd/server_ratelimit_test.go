package cmd

import (
	"testing"

	"github.com/tokensmith/tokensmith/server"
)

func TestServerRateLimitFlags(t *testing.T) {
	testFlags(t, func(t *testing.T, args []string) (server.RateLimits, error) {
		o, err := serverOptions(t, args)
		if err != nil {
			return server.RateLimits{}, err
		}
		return o.RateLimits, nil
	}, []flagCase[server.RateLimits]{
		{"throttles by default with the documented limits", nil, is(server.DefaultRateLimits()), false},
		{"takes every rate limit flag", []string{"--rate-limit-per-ip", "2.5", "--rate-limit-per-ip-burst", "7",
			"--rate-limit-per-client", "3", "--rate-limit-per-client-burst", "9"},
			is(server.RateLimits{PerIP: 2.5, PerIPBurst: 7, PerClient: 3, PerClientBurst: 9}), false},
		{"0 disables both limiters", []string{"--rate-limit-per-ip", "0", "--rate-limit-per-client", "0"},
			is(server.RateLimits{PerIP: server.RateLimitOff, PerIPBurst: 100, PerClient: server.RateLimitOff, PerClientBurst: 100}), false},
		{"refuses a negative rate", []string{"--rate-limit-per-ip", "-1"}, nil, true},
		{"refuses a zero burst", []string{"--rate-limit-per-client-burst", "0"}, nil, true},
	})
}
