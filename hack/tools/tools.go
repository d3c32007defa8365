//go:build tools

// Package tools pins the main packages built by hack/build-control-plane.sh
// (kube-apiserver and etcd, for envtest and "make run") and hack/build-node.sh
// (the rest of a one-node cluster, for test/cluster).
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
