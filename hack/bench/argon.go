package main

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokensmith/tokensmith/internal/password"
)

// argon2Rate is the raw argon2id verification rate of this machine: one
// goroutine per GOMAXPROCS verifying the password.Default hash for d.
func argon2Rate(d time.Duration) float64 {
	phc, err := password.Hash(userPassword, password.Default)
	if err != nil {
		return 0
	}
	h, err := password.Parse(phc)
	if err != nil {
		return 0
	}
	var (
		n  atomic.Int64
		wg sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if h.Verify(userPassword) {
					n.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}
