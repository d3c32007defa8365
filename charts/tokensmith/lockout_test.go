package chart_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/tokensmith/tokensmith/server/lockout"
)

func TestServerLockoutValues(t *testing.T) {
	t.Run("the chart's defaults are the binary's", func(t *testing.T) {
		args := serverArgs(t, "")
		if got := flagValue(args, "--lockout-threshold"); got != strconv.Itoa(lockout.DefaultThreshold) {
			t.Errorf("--lockout-threshold=%q, want %d", got, lockout.DefaultThreshold)
		}
		for flag, want := range map[string]time.Duration{"--lockout-base": lockout.DefaultBase, "--lockout-max": lockout.DefaultMax} {
			if got, err := time.ParseDuration(flagValue(args, flag)); err != nil || got != want {
				t.Errorf("%s=%q, want %s", flag, flagValue(args, flag), want)
			}
		}
	})
	t.Run("values reach the flags", func(t *testing.T) {
		wantFlags(t, serverArgs(t, "server: {lockout: {threshold: 0, base: 30s, max: 2h}}"),
			map[string]string{"--lockout-threshold": "0", "--lockout-base": "30s", "--lockout-max": "2h"})
	})
	schemaRejects(t,
		"server: {lockout: {threshold: -1}}",
		"server: {lockout: {threshold: 51}}",
		"server: {lockout: {base: soon}}",
		"server: {lockout: {treshold: 5}}",
	)
}
