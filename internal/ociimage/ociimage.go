// Package ociimage builds tokensmith's container image from a static binary
// with go-containerregistry: no Docker engine, no registry, no base image to
// pull. The result has the content of the Dockerfile's distroless/static:nonroot
// image (a test in test/image keeps the two in agreement): the binary, an
// /etc/passwd and /etc/group with the nonroot user 65532, CA certificates, a
// home directory and /tmp, OCI labels, and the same entrypoint, user and working
// directory.
//
// Every file has a fixed timestamp and owner, so the same binary always gives
// the same image digest.
package ociimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The nonroot user of distroless, which the chart's runAsUser and the
// Dockerfile's USER name by number so that runAsNonRoot can be checked.
const (
	NonrootUID  = 65532
	NonrootHome = "/home/nonroot"
)

// Spec says what goes into an image besides its base files.
type Spec struct {
	// Binary is the path of the static executable on this machine.
	Binary string
	// Path is where the binary goes in the image; the entrypoint runs it.
	Path string
	// User is the image's USER ("65532:65532").
	User string
	// WorkingDir is the image's WORKDIR.
	WorkingDir string
	// Labels are the image's OCI labels (org.opencontainers.image.*).
	Labels map[string]string
	// CACertificates is the PEM bundle installed as
	// /etc/ssl/certs/ca-certificates.crt; empty installs none.
	CACertificates string
	// Created is the image's creation time; the zero time keeps builds
	// reproducible.
	Created time.Time
}

// Pause is the Spec of the sandbox ("pause") image the one-node test cluster's
// containerd runs for every pod, built from hack/pause.
func Pause(binary string) Spec {
	return Spec{Binary: binary, Path: "/pause", User: "65535:65535", WorkingDir: "/"}
}

// Tokensmith is the Spec of the product image, the one the Dockerfile describes.
func Tokensmith(binary string, labels map[string]string) Spec {
	return Spec{
		Binary:         binary,
		Path:           "/tokensmith",
		User:           fmt.Sprintf("%d:%d", NonrootUID, NonrootUID),
		WorkingDir:     NonrootHome,
		Labels:         labels,
		CACertificates: "/etc/ssl/certs/ca-certificates.crt",
	}
}

// Build returns the image described by s.
func Build(s Spec) (v1.Image, error) {
	base, err := baseLayer(s.CACertificates, s.Created)
	if err != nil {
		return nil, err
	}
	bin, err := binaryLayer(s.Binary, s.Path, s.Created)
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{CreatedBy: "ociimage: base files (passwd, group, CA certificates, home, tmp)", Created: v1.Time{Time: s.Created}}},
		mutate.Addendum{Layer: bin, History: v1.History{CreatedBy: "ociimage: COPY " + s.Path, Created: v1.Time{Time: s.Created}}},
	)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	if arch := os.Getenv("GOARCH"); arch != "" {
		cf.Architecture = arch
	}
	cf.Created = v1.Time{Time: s.Created}
	cf.Config.Entrypoint = []string{s.Path}
	cf.Config.User = s.User
	cf.Config.WorkingDir = s.WorkingDir
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}
	cf.Config.Labels = s.Labels
	return mutate.ConfigFile(img, cf)
}

// WriteTarball writes img as a tarball that "ctr images import", "docker load",
// "podman load" and "kind load image-archive" accept, tagged ref.
func WriteTarball(file, ref string, img v1.Image) error {
	// Like Docker, a name without a registry means docker.io/library/<name>.
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(file, tag, img)
}

// file is one entry of a layer.
type file struct {
	name     string
	mode     int64
	uid, gid int
	dir      bool
	data     []byte
}

func baseLayer(caFile string, created time.Time) (v1.Layer, error) {
	files := []file{
		{name: "etc", mode: 0o755, dir: true},
		{name: "etc/passwd", mode: 0o644, data: []byte(
			"root:x:0:0:root:/root:/sbin/nologin\n" +
				"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
				fmt.Sprintf("nonroot:x:%d:%d:nonroot:%s:/sbin/nologin\n", NonrootUID, NonrootUID, NonrootHome))},
		{name: "etc/group", mode: 0o644, data: []byte(
			"root:x:0:\nnobody:x:65534:\n" + fmt.Sprintf("nonroot:x:%d:\n", NonrootUID))},
		{name: "etc/nsswitch.conf", mode: 0o644, data: []byte("hosts: files dns\n")},
		{name: "home", mode: 0o755, dir: true},
		{name: NonrootHome[1:], mode: 0o700, dir: true, uid: NonrootUID, gid: NonrootUID},
		{name: "root", mode: 0o700, dir: true},
		{name: "tmp", mode: 0o1777, dir: true},
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("CA certificates: %w", err)
		}
		files = append(files,
			file{name: "etc/ssl", mode: 0o755, dir: true},
			file{name: "etc/ssl/certs", mode: 0o755, dir: true},
			file{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: pem})
	}
	return layer(files, created)
}

func binaryLayer(binary, dest string, created time.Time) (v1.Layer, error) {
	data, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	var files []file
	for dir := path.Dir(dest); dir != "/"; dir = path.Dir(dir) {
		files = append(files, file{name: dir[1:], mode: 0o755, dir: true})
	}
	files = append(files, file{name: dest[1:], mode: 0o755, data: data})
	return layer(files, created)
}

// layer writes files into an uncompressed tar, parents before children, and
// makes a gzip-compressed layer of it.
func layer(files []file, created time.Time) (v1.Layer, error) {
	sort.SliceStable(files, func(i, j int) bool { return files[i].name < files[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.gid, ModTime: created, Format: tar.FormatPAX}
		if f.dir {
			h.Typeflag, h.Name = tar.TypeDir, f.name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// Labels are the OCI labels of the product image; the Dockerfile sets the same
// keys.
func Labels(version, revision string) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       "tokensmith",
		"org.opencontainers.image.description": "Kubernetes-native token service: controller and token server",
		"org.opencontainers.image.source":      "https://github.com/tokensmith/tokensmith",
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.version":     version,
	}
	if revision != "" {
		l["org.opencontainers.image.revision"] = revision
	}
	return l
}
