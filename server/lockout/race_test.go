//go:build race

package lockout_test

// raceDetector is true when the tests run with -race (see norace_test.go).
const raceDetector = true
