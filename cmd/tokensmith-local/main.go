// Command tokensmith-local is "make run": a throwaway control plane
// (kube-apiserver and etcd built by hack/) with the CRDs installed, the
// controller and the token server running in this process, and the samples
// applied.
//
// It is a binary of its own, not a subcommand of tokensmith, because it links
// envtest to start the control plane. envtest is test machinery: one of its
// packages creates a directory under $TMPDIR in an init function, which panics
// before main under the chart's read-only root filesystem. Keeping it here
// keeps it out of the image's binary altogether, which a test checks with
// "go list -deps" (test/image).
package main

import "os"

func main() {
	os.Exit(runLocal(os.Args[1:], os.Stdout, os.Stderr))
}
