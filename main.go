// Command tokensmith is one binary for every part of tokensmith:
//
//	tokensmith controller   reconcile OAuthClients and Users into Secrets
//	tokensmith server       serve the token APIs from those Secrets
//
// "make run" runs the local development mode, cmd/tokensmith-local.
package main

import (
	"os"

	"github.com/tokensmith/tokensmith/cmd"
)

func main() {
	os.Exit(cmd.Main(os.Args[1:], os.Stdout, os.Stderr))
}
