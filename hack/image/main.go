// Command image writes tokensmith's OCI image as a tarball, built from a static
// binary with go-containerregistry (internal/ociimage): "make image". Load it
// with "ctr -n k8s.io images import", "docker load" or "kind load image-archive".
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tokensmith/tokensmith/internal/ociimage"
)

func main() {
	binary := flag.String("binary", "bin/tokensmith", "Static tokensmith binary to put in the image.")
	out := flag.String("o", "bin/image/tokensmith.tar", "Tarball to write.")
	tag := flag.String("tag", "tokensmith:dev", "Image reference the tarball carries.")
	version := flag.String("version", "dev", "org.opencontainers.image.version label.")
	revision := flag.String("revision", "", "org.opencontainers.image.revision label (the git commit).")
	pause := flag.Bool("pause", false, "Build the test cluster's sandbox image from hack/pause's binary instead.")
	flag.Parse()

	spec := ociimage.Tokensmith(*binary, ociimage.Labels(*version, *revision))
	if *pause {
		spec = ociimage.Pause(*binary)
	}
	if err := write(spec, *out, *tag); err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
}

func write(spec ociimage.Spec, out, tag string) error {
	img, err := ociimage.Build(spec)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := ociimage.WriteTarball(out, tag, img); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s %s %s\n", out, tag, digest)
	return nil
}
