#!/usr/bin/env bash
# Builds the node and controller binaries of the one-node test cluster (kubelet,
# kube-controller-manager, kube-scheduler, kube-proxy) from the same pinned
# k8s.io/kubernetes as hack/build-control-plane.sh, into bin/node/<pin>/.
# The pin is a hash of hack/tools/go.{mod,sum} and hack/kube-ldflags.sh, so they are rebuilt only
# when a version changes. Prints the directory on stdout.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/hack/tools"
# The pin covers the versions and how they are built (contents only: the
# checkout's path must not matter).
pin=$(cat "$tools/go.mod" "$tools/go.sum" "$root/hack/kube-ldflags.sh" | sha256sum | cut -c1-12)
out="$root/bin/node/$pin"
bins=(kubelet kube-controller-manager kube-scheduler kube-proxy)

have=1
for b in "${bins[@]}"; do [[ -x "$out/$b" ]] || have=0; done
if ((have)); then
  echo "$out"
  exit 0
fi

rm -rf "$out.tmp"
mkdir -p "$out.tmp"
echo "building ${bins[*]} into $out (pin $pin); this takes several minutes once" >&2
(
  cd "$tools"
  export CGO_ENABLED=0
  ldflags=$("$root/hack/kube-ldflags.sh")
  pkgs=()
  for b in "${bins[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  go build -trimpath -ldflags="$ldflags" -o "$out.tmp/" "${pkgs[@]}"
) >&2
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
