package chart_test

import (
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/tokensmith/tokensmith/server/lockout"
)

func TestServerLockoutValues(t *testing.T) {
	serverArgs := func(t *testing.T, values string) []string {
		t.Helper()
		d := convert[appsv1.Deployment](t, find(render(t, values), "Deployment", "tokensmith-server"))
		return d.Spec.Template.Spec.Containers[0].Args
	}
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
		args := serverArgs(t, "server: {lockout: {threshold: 0, base: 30s, max: 2h}}")
		for flag, want := range map[string]string{"--lockout-threshold": "0", "--lockout-base": "30s", "--lockout-max": "2h"} {
			if got := flagValue(args, flag); got != want {
				t.Errorf("%s=%q, want %q", flag, got, want)
			}
		}
	})
	for _, values := range []string{
		"server: {lockout: {threshold: -1}}",
		"server: {lockout: {threshold: 51}}",
		"server: {lockout: {base: soon}}",
		"server: {lockout: {treshold: 5}}",
	} {
		t.Run("the schema rejects "+values, func(t *testing.T) {
			if _, err := renderRaw(t, values); err == nil {
				t.Fatal("rendered without error")
			}
		})
	}
}
