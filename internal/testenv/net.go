package testenv

import (
	"fmt"
	"net"
	"net/http"
	"time"
)

// FreeAddr returns a loopback address whose port was free a moment ago, for a
// server a test or the bench starts itself. It panics when loopback has no
// free port: nothing else would work then either, and the panic fails the
// test loudly.
func FreeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("testenv: no free loopback port: %v", err))
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// WaitReady polls url until it answers 200 OK, for at most timeout.
func WaitReady(url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url) //nolint:gosec // a loopback URL the caller started
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s", url, timeout)
}
