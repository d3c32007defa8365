package main

import (
	"context"
	"fmt"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/tokensmith/tokensmith/server"
)

// localDeviceLoginClient is the clientID of config/samples/device_login_client.yaml.
const localDeviceLoginClient = "device-login"

// startLocalServer runs the token server of "tokensmith-local" in this process
// against the local control plane; a failure is sent to errs.
func startLocalServer(ctx context.Context, cfg *rest.Config, f localFlags, errs chan<- error) error {
	o := server.RunOptions{
		Options: server.Options{
			Issuer:            "http://" + f.listen,
			DeviceLoginClient: localDeviceLoginClient,
			Logger:            ctrl.Log.WithName("server"),
			// One person on loopback: nothing to throttle.
			RateLimits: server.NoRateLimits(),
		},
		Namespace:   f.namespace,
		Listen:      f.listen,
		AdminListen: f.adminListen,
	}
	go func() {
		if err := server.Run(ctx, cfg, o); err != nil {
			errs <- fmt.Errorf("token server: %w", err)
		}
	}()
	return nil
}
