// Command pause is the sandbox process of the one-node test cluster's pods
// (what registry.k8s.io/pause is on a real node): it holds the pod's
// namespaces, reaps orphaned children as PID 1 would, and exits on SIGINT or
// SIGTERM. It is built into an image by hack/image -pause, because the test
// cluster can pull nothing.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			return
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
