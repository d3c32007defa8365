package cmd

import (
	"io"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/server/lockout"
)

func TestServerLockoutFlags(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "auth")
	cases := []struct {
		name  string
		args  []string
		want  lockout.Policy
		fails bool
	}{
		{"defaults to 10 failures, then 1m doubling to 1h", nil, lockout.Policy{Threshold: 10, Base: time.Minute, Max: time.Hour}, false},
		{"takes every flag", []string{"--lockout-threshold", "5", "--lockout-base", "2m", "--lockout-max", "2h"}, lockout.Policy{Threshold: 5, Base: 2 * time.Minute, Max: 2 * time.Hour}, false},
		{"turns the lockout off with a threshold of 0", []string{"--lockout-threshold", "0"}, lockout.Policy{Threshold: -1}, false},
		{"refuses a negative threshold", []string{"--lockout-threshold", "-1"}, lockout.Policy{}, true},
		{"refuses a cap below the base", []string{"--lockout-base", "10m", "--lockout-max", "5m"}, lockout.Policy{}, true},
		{"refuses settings that allow more than 100 checks an hour", []string{"--lockout-threshold", "50", "--lockout-base", "1s", "--lockout-max", "10s"}, lockout.Policy{}, true},
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
			if err != nil || o.Lockout != c.want {
				t.Fatalf("%v %+v, want %+v", err, o.Lockout, c.want)
			}
		})
	}
}
