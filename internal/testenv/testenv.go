// Package testenv starts a real kube-apiserver and etcd (built from pinned Go
// modules by hack/build-control-plane.sh) with the tokensmith CRDs installed,
// for tests and for "tokensmith-local".
package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
)

// Scheme knows the built-in kinds and tokensmith's.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := authv1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// RepoRoot finds the directory holding this module's go.mod, walking up from
// the working directory (tests run in their package directory).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/tokensmith/tokensmith\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: not inside the tokensmith module")
		}
		dir = parent
	}
}

// BinaryDir returns the directory holding kube-apiserver and etcd: $KUBEBUILDER_ASSETS
// when set (the Makefile sets it), otherwise whatever hack/build-control-plane.sh
// builds or finds cached.
func BinaryDir() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(filepath.Join(root, "hack", "build-control-plane.sh")) //nolint:gosec // a fixed script in this repository
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("testenv: building the control plane: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// New returns an envtest environment with the tokensmith CRDs, not yet started.
func New() (*envtest.Environment, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	bin, err := BinaryDir()
	if err != nil {
		return nil, err
	}
	return &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: bin,
		Scheme:                Scheme(),
	}, nil
}

// Start starts a control plane and returns it with an admin rest.Config.
// Callers Stop() the environment when done.
func Start() (*envtest.Environment, *rest.Config, error) {
	env, err := New()
	if err != nil {
		return nil, nil, err
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, nil, fmt.Errorf("testenv: starting kube-apiserver: %w", err)
	}
	return env, cfg, nil
}
