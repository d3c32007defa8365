package chart_test

import (
	"strconv"
	"testing"

	"github.com/tokensmith/tokensmith/server/throttle"
)

func TestServerRateLimitValues(t *testing.T) {
	t.Run("the chart's defaults are the binary's", func(t *testing.T) {
		args := serverArgs(t, "")
		for flag, want := range map[string]int{
			"--rate-limit-per-ip":           throttle.DefaultPerIP,
			"--rate-limit-per-ip-burst":     throttle.DefaultPerIPBurst,
			"--rate-limit-per-client":       throttle.DefaultPerClient,
			"--rate-limit-per-client-burst": throttle.DefaultPerClientBurst,
		} {
			if got := flagValue(args, flag); got != strconv.Itoa(want) {
				t.Errorf("%s=%q, want %d", flag, got, want)
			}
		}
	})
	t.Run("0 disables, fractions and large bursts pass through as the flags parse them", func(t *testing.T) {
		wantFlags(t, serverArgs(t, "server: {rateLimit: {perIP: 0, perIPBurst: 1000000, perClient: 0.5, perClientBurst: 3}}"), map[string]string{
			"--rate-limit-per-ip": "0", "--rate-limit-per-ip-burst": "1000000",
			"--rate-limit-per-client": "0.5", "--rate-limit-per-client-burst": "3",
		})
	})
	schemaRejects(t,
		"server: {rateLimit: {perIP: -1}}",
		"server: {rateLimit: {perClientBurst: 0}}",
		"server: {rateLimit: {perIp: 5}}",
	)
}
