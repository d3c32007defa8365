// Package image checks what goes into tokensmith's container image: the binary
// links no test machinery and starts as the image's user on a read-only root
// filesystem with no writable HOME or TMPDIR, "make image" builds the image the
// Dockerfile describes, and the build is reproducible.
package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/tokensmith/tokensmith/internal/ociimage"
	"github.com/tokensmith/tokensmith/internal/testenv"
)

// testMachinery matches import paths that exist for tests. One of them
// (controller-runtime's envtest address manager) panicked in an init function
// on the read-only root filesystem, before main ran.
var testMachinery = regexp.MustCompile(`(^|/)(envtest|testenv|testing|fake|fakes|mock|mocks|testutil|randtest)(/|$)|/internal/testing/|^testing$|^net/http/httptest$`)

// linkedByClientGo are test packages that client-go itself links into every
// program that uses a typed clientset (gentype imports the fake clientsets'
// object tracker); they hold no state and do nothing at init.
var linkedByClientGo = map[string]bool{"k8s.io/client-go/testing": true}

func TestImageBinaryLinksNoTestMachinery(t *testing.T) {
	root := repoRoot(t)
	cmd := exec.Command("go", "list", "-deps", ".")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	var bad []string
	for _, pkg := range strings.Fields(string(out)) {
		if testMachinery.MatchString(pkg) && !linkedByClientGo[pkg] {
			bad = append(bad, pkg)
		}
	}
	if len(bad) > 0 {
		t.Fatalf("the image's binary links test machinery:\n  %s", strings.Join(bad, "\n  "))
	}
	// The pattern itself must catch what broke the pods: local mode's envtest.
	cmd = exec.Command("go", "list", "-deps", "./cmd/tokensmith-local")
	cmd.Dir = root
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/tokensmith-local: %v", err)
	}
	if !testMachinery.MatchString(string(out)) || !strings.Contains(string(out), "sigs.k8s.io/controller-runtime/pkg/envtest") {
		t.Fatal("the test machinery pattern does not recognise envtest in tokensmith-local's dependencies")
	}
}

// TestBinaryStartsAsTheImageUserOnAReadOnlyRoot runs the static binary as the
// chart runs it: UID 65532, no groups, a read-only root filesystem (a private
// mount namespace with / remounted read-only) and HOME and TMPDIR pointing at
// nothing.
func TestBinaryStartsAsTheImageUserOnAReadOnlyRoot(t *testing.T) {
	needRoot(t)
	bin := buildBinary(t)
	for _, sub := range []string{"server", "controller"} {
		script := `set -e
mount --make-rprivate /
mount -o remount,bind,ro /
exec setpriv --reuid=65532 --regid=65532 --clear-groups env -i HOME=/nonexistent TMPDIR=/nonexistent "$0" "$1" --help`
		cmd := exec.Command("unshare", "--mount", "--", "sh", "-c", script, bin, sub)
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("%s --help: %v", sub, err)
		}
		if code := cmd.ProcessState.ExitCode(); code != 0 || strings.Contains(stderr.String(), "\npanic: ") || strings.HasPrefix(stderr.String(), "panic: ") {
			t.Fatalf("%s --help as 65532 on a read-only root exited %d:\n%s", sub, code, stderr.String())
		}
		if !strings.Contains(stderr.String(), "-namespace") {
			t.Fatalf("%s --help printed no usage:\n%s", sub, stderr.String())
		}
	}
}

// TestReadOnlyRootCheckCatchesAWriter proves the sandbox above is real: a
// command that writes to the root filesystem fails in it.
func TestReadOnlyRootCheckCatchesAWriter(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	script := `mount --make-rprivate / && mount -o remount,bind,ro / && exec setpriv --reuid=65532 --regid=65532 --clear-groups touch "$0/x"`
	cmd := exec.Command("unshare", "--mount", "--", "sh", "-c", script, dir)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("a write to the read-only root succeeded: %s", out)
	}
}

func TestImageMatchesTheDockerfile(t *testing.T) {
	root := repoRoot(t)
	df := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	img := buildImage(t, buildBinary(t), "v9.9.9")
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cf.Config.Entrypoint, df.entrypoint; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("entrypoint: image %q, Dockerfile %q", got, want)
	}
	if cf.Config.User != df.user {
		t.Errorf("user: image %q, Dockerfile %q", cf.Config.User, df.user)
	}
	if cf.Config.WorkingDir != df.workdir {
		t.Errorf("working directory: image %q, Dockerfile %q", cf.Config.WorkingDir, df.workdir)
	}
	if len(df.entrypoint) == 0 || df.copyDest != df.entrypoint[0] {
		t.Errorf("the Dockerfile copies the binary to %q but runs %q", df.copyDest, df.entrypoint)
	}
	for k, v := range df.labels {
		if v == "${VERSION}" {
			v = "v9.9.9"
		}
		if cf.Config.Labels[k] != v {
			t.Errorf("label %s: image %q, Dockerfile %q", k, cf.Config.Labels[k], v)
		}
	}
	for k := range cf.Config.Labels {
		if _, ok := df.labels[k]; !ok && k != "org.opencontainers.image.revision" {
			t.Errorf("label %s is in the image but not in the Dockerfile", k)
		}
	}
	if df.base != "gcr.io/distroless/static:nonroot" {
		t.Errorf("the Dockerfile's base is %q; internal/ociimage reproduces distroless/static:nonroot, update it too", df.base)
	}
}

func TestImageHoldsWhatDistrolessNonrootHolds(t *testing.T) {
	bin := buildBinary(t)
	img := buildImage(t, bin, "dev")
	files := readFiles(t, img)

	want, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := files["tokensmith"]; !ok || !bytes.Equal(f.data, want) || f.mode&0o111 == 0 {
		t.Error("/tokensmith is missing, differs from the binary or is not executable")
	}
	if !regexp.MustCompile(`(?m)^nonroot:x:65532:65532:[^:]*:/home/nonroot:`).Match(files["etc/passwd"].data) {
		t.Errorf("/etc/passwd has no nonroot user 65532:\n%s", files["etc/passwd"].data)
	}
	if !bytes.Contains(files["etc/group"].data, []byte("nonroot:x:65532:")) {
		t.Error("/etc/group has no nonroot group 65532")
	}
	if !bytes.Contains(files["etc/ssl/certs/ca-certificates.crt"].data, []byte("BEGIN CERTIFICATE")) {
		t.Error("no CA certificates at /etc/ssl/certs/ca-certificates.crt")
	}
	if h := files["home/nonroot"]; h.uid != 65532 || h.mode&0o700 != 0o700 {
		t.Errorf("/home/nonroot: uid %d mode %o, want 65532 and rwx for its owner", h.uid, h.mode)
	}
	if tmp := files["tmp"]; tmp.mode&0o1777 != 0o1777 {
		t.Errorf("/tmp mode %o, want 1777", tmp.mode)
	}
	for name := range files {
		if strings.HasPrefix(name, "bin/") || strings.HasPrefix(name, "usr/bin/") || name == "bin/sh" {
			t.Errorf("the image has %s; it should hold no shell or tools", name)
		}
	}
}

func TestImageBuildIsReproducible(t *testing.T) {
	bin := buildBinary(t)
	a, err := buildImage(t, bin, "dev").Digest()
	if err != nil {
		t.Fatal(err)
	}
	b, err := buildImage(t, bin, "dev").Digest()
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatalf("two builds of one binary differ: %s and %s", a, b)
	}
}

// TestTarballLoadsAsTheTaggedImage reads back the tarball "make image" writes.
func TestTarballLoadsAsTheTaggedImage(t *testing.T) {
	img := buildImage(t, buildBinary(t), "dev")
	file := filepath.Join(t.TempDir(), "tokensmith.tar")
	if err := ociimage.WriteTarball(file, "tokensmith:dev", img); err != nil {
		t.Fatal(err)
	}
	back, err := tarball.ImageFromPath(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The image ID (the config's digest) is what "ctr images ls" and "docker
	// images" show; a docker-archive tarball keeps it, not the manifest.
	want, _ := img.ConfigName()
	got, _ := back.ConfigName()
	if got != want {
		t.Fatalf("tarball holds image %s, built %s", got, want)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || len(m[0].RepoTags) != 1 || m[0].RepoTags[0] != "tokensmith:dev" {
		t.Fatalf("tarball tags: %+v", m)
	}
}

type dockerfile struct {
	base, user, workdir, copyDest string
	entrypoint                    []string
	labels                        map[string]string
}

// parseDockerfile reads the final stage of the Dockerfile: the instructions
// the image's configuration comes from.
func parseDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, drop comments.
	text := regexp.MustCompile(`\\\n\s*`).ReplaceAllString(string(data), " ")
	var d dockerfile
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			d = dockerfile{base: strings.Fields(rest)[0], labels: map[string]string{}}
		case "USER":
			d.user = rest
		case "WORKDIR":
			d.workdir = rest
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &d.entrypoint); err != nil {
				t.Fatalf("ENTRYPOINT is not in exec form: %s", rest)
			}
		case "COPY":
			f := strings.Fields(rest)
			d.copyDest = f[len(f)-1]
		case "LABEL":
			for _, m := range regexp.MustCompile(`([\w.-]+)="([^"]*)"`).FindAllStringSubmatch(rest, -1) {
				d.labels[m[1]] = m[2]
			}
		}
	}
	return d
}

type entry struct {
	mode     int64
	uid      int
	data     []byte
	typeflag byte
}

func readFiles(t *testing.T, img v1.Image) map[string]entry {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string]entry{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.Trim(h.Name, "/")] = entry{mode: h.Mode, uid: h.Uid, data: data, typeflag: h.Typeflag}
	}
	return files
}

func buildImage(t *testing.T, bin, version string) v1.Image {
	t.Helper()
	img, err := ociimage.Build(ociimage.Tokensmith(bin, ociimage.Labels(version, "")))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// buildBinary builds the binary as "make build" does, once per test binary.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tokensmith-image-test")
		if err != nil {
			binErr = err
			return
		}
		// UID 65532 must be able to run it.
		if err := os.Chmod(dir, 0o755); err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "tokensmith")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", binPath, ".")
		cmd.Dir = repoRootOrEmpty()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = errors.New(string(out))
		}
	})
	if binErr != nil {
		t.Fatalf("go build: %v", binErr)
	}
	// Every parent must be searchable, so UID 65532 can run it.
	for dir := filepath.Dir(binPath); dir != "/"; dir = filepath.Dir(dir) {
		st, err := os.Stat(dir)
		if err == nil && st.Mode().Perm()&0o001 == 0 {
			t.Fatalf("%s is not searchable by other users; set TMPDIR to a directory that is", dir)
		}
	}
	return binPath
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (unshare --mount to remount / read-only, setpriv to become UID 65532); run make test as root")
	}
	for _, tool := range []string{"unshare", "setpriv", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("this test needs %s (util-linux): %v", tool, err)
		}
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root := repoRootOrEmpty()
	if root == "" {
		t.Fatal("cannot find the repository root")
	}
	return root
}

func repoRootOrEmpty() string {
	root, err := testenv.RepoRoot()
	if err != nil {
		return ""
	}
	return root
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}
