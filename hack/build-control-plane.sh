#!/usr/bin/env bash
# Builds kube-apiserver and etcd from the Go modules pinned in hack/tools/go.mod
# into bin/control-plane/<pin>/, the directory envtest's BinaryAssetsDirectory
# points at. The pin is a hash of hack/tools/go.{mod,sum} and hack/kube-ldflags.sh, so the binaries are rebuilt
# only when a version changes. Prints the directory on stdout.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/hack/tools"
# The pin covers the versions and how they are built (contents only: the
# checkout's path must not matter).
pin=$(cat "$tools/go.mod" "$tools/go.sum" "$root/hack/kube-ldflags.sh" | sha256sum | cut -c1-12)
out="$root/bin/control-plane/$pin"

if [[ -x "$out/kube-apiserver" && -x "$out/etcd" ]]; then
  echo "$out"
  exit 0
fi

rm -rf "$out.tmp"
mkdir -p "$out.tmp"
echo "building kube-apiserver and etcd into $out (pin $pin); this takes a few minutes once" >&2
(
  cd "$tools"
  export CGO_ENABLED=0
  ldflags=$("$root/hack/kube-ldflags.sh")
  go build -trimpath -ldflags="$ldflags" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
  go build -trimpath -ldflags="$ldflags" -o "$out.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
) >&2
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
