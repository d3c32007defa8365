package cmd

import (
	"io"
	"testing"

	"github.com/tokensmith/tokensmith/server"
)

// flagCase is a command line and what parsing it must give: check looks at
// the result, or, with fails, parsing must refuse the line.
type flagCase[T any] struct {
	name  string
	args  []string
	check func(t *testing.T, got T)
	fails bool
}

// testFlags runs each case through parse, with POD_NAMESPACE=auth.
func testFlags[T any](t *testing.T, parse func(t *testing.T, args []string) (T, error), cases []flagCase[T]) {
	t.Helper()
	t.Setenv("POD_NAMESPACE", "auth")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parse(t, c.args)
			if c.fails {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, got)
		})
	}
}

// is checks that the parsed value is want.
func is[T comparable](want T) func(*testing.T, T) {
	return func(t *testing.T, got T) {
		t.Helper()
		if got != want {
			t.Fatalf("%+v, want %+v", got, want)
		}
	}
}

// serverOptions parses a server command line into its RunOptions.
func serverOptions(t *testing.T, args []string) (*server.RunOptions, error) {
	t.Helper()
	_, o, err := parseServerFlags(args, io.Discard)
	return o, err
}
