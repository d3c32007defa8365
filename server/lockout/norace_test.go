//go:build !race

package lockout_test

// raceDetector is true when the tests run with -race (see race_test.go).
const raceDetector = false
