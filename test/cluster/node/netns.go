package node

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// DialContext opens a connection from inside the node's network namespace, so
// that this process (in the host's namespace) reaches the API server, Service
// ClusterIPs and pods without any route or address added to the host. A socket
// keeps the namespace it was created in; only the creating thread switches, and
// it switches back before it is used for anything else.
func (c *Cluster) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		conn, restored, err := c.dialInNamespace(ctx, network, addr)
		if restored {
			// Only a thread back in the host's namespace may run other goroutines;
			// one that could not switch back exits with this goroutine.
			runtime.UnlockOSThread()
		}
		done <- result{conn, err}
	}()
	r := <-done
	return r.conn, r.err
}

func (c *Cluster) dialInNamespace(ctx context.Context, network, addr string) (conn net.Conn, restored bool, err error) {
	host, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, true, err
	}
	defer host.Close()
	node, err := os.Open(c.netnsPath)
	if err != nil {
		return nil, true, err
	}
	defer node.Close()
	if err := unix.Setns(int(node.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, true, fmt.Errorf("entering the node's network namespace: %w", err)
	}
	// The socket is created (and connect started) on this locked thread; an IP
	// address needs no resolver goroutine.
	conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
	if serr := unix.Setns(int(host.Fd()), unix.CLONE_NEWNET); serr != nil {
		if conn != nil {
			_ = conn.Close()
		}
		return nil, false, fmt.Errorf("leaving the node's network namespace: %w", serr)
	}
	return conn, true, err
}
