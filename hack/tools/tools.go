//go:build tools

// Package tools pins the main packages built by hack/build-control-plane.sh.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
