package cmd

import (
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/server/lockout"
)

func TestServerLockoutFlags(t *testing.T) {
	testFlags(t, func(t *testing.T, args []string) (lockout.Policy, error) {
		o, err := serverOptions(t, args)
		if err != nil {
			return lockout.Policy{}, err
		}
		return o.Lockout, nil
	}, []flagCase[lockout.Policy]{
		{"defaults to 10 failures, then 1m doubling to 1h", nil, is(lockout.Policy{Threshold: 10, Base: time.Minute, Max: time.Hour}), false},
		{"takes every flag", []string{"--lockout-threshold", "5", "--lockout-base", "2m", "--lockout-max", "2h"}, is(lockout.Policy{Threshold: 5, Base: 2 * time.Minute, Max: 2 * time.Hour}), false},
		{"turns the lockout off with a threshold of 0", []string{"--lockout-threshold", "0"}, is(lockout.Policy{Threshold: -1}), false},
		{"refuses a negative threshold", []string{"--lockout-threshold", "-1"}, nil, true},
		{"refuses a cap below the base", []string{"--lockout-base", "10m", "--lockout-max", "5m"}, nil, true},
		{"refuses settings that allow more than 100 checks an hour", []string{"--lockout-threshold", "50", "--lockout-base", "1s", "--lockout-max", "10s"}, nil, true},
	})
}
