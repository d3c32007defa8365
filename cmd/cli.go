// Package cmd is the command line of the tokensmith binary (main.go at the
// module root, so that "go build ." builds what the image holds): it binds the
// flags and wires the chosen part, one file per subcommand. Defaults live in
// the packages whose options the flags set (server, controllers); this package
// only binds them. Local mode is a separate binary (cmd/tokensmith-local, which
// reuses this wiring), so that the image's binary links no test machinery.
//
// internal/ holds libraries only: nothing in it imports cmd, server or
// controllers (a depguard rule in .golangci.yml enforces it).
package cmd

import (
	"fmt"
	"io"
)

// command is one subcommand: it parses its own flags and returns an exit code.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() map[string]command {
	return map[string]command{
		"controller": {"reconcile OAuthClients and Users into Secrets", runController},
		"server":     {"serve the token APIs from the Secrets the controller writes", runServer},
	}
}

// Main runs the subcommand named by args[0] and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "tokensmith: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	return cmd.run(args[1:], stdout, stderr)
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: tokensmith <command> [flags]")
	fmt.Fprintln(w)
	for _, name := range []string{"controller", "server"} {
		fmt.Fprintf(w, "  %-11s %s\n", name, cmds[name].summary)
	}
}
