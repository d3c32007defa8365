package cmd

import (
	"io"
	"testing"

	"github.com/tokensmith/tokensmith/server"
)

func TestServerRateLimitFlags(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "auth")
	cases := []struct {
		name  string
		args  []string
		want  server.RateLimits
		fails bool
	}{
		{"throttles by default with the documented limits", nil, server.DefaultRateLimits(), false},
		{"takes every rate limit flag", []string{"--rate-limit-per-ip", "2.5", "--rate-limit-per-ip-burst", "7",
			"--rate-limit-per-client", "3", "--rate-limit-per-client-burst", "9"},
			server.RateLimits{PerIP: 2.5, PerIPBurst: 7, PerClient: 3, PerClientBurst: 9}, false},
		{"0 disables both limiters", []string{"--rate-limit-per-ip", "0", "--rate-limit-per-client", "0"},
			server.RateLimits{PerIPBurst: 100, PerClientBurst: 100}, false},
		{"refuses a negative rate", []string{"--rate-limit-per-ip", "-1"}, server.RateLimits{}, true},
		{"refuses a zero burst", []string{"--rate-limit-per-client-burst", "0"}, server.RateLimits{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, o, err := parseServerFlags(c.args, io.Discard)
			if c.fails {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.RateLimits != c.want {
				t.Fatalf("RateLimits = %+v, want %+v", o.RateLimits, c.want)
			}
		})
	}
}
