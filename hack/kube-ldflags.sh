#!/usr/bin/env bash
# Prints the -ldflags for the Kubernetes binaries hack/ builds: stripped, and
# stamped with the pinned k8s.io/kubernetes version, as release builds are.
# Without the stamp they report v0.0.0-master, which fails every kubeVersion
# check (Helm charts' included).
set -euo pipefail
tools="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/tools"
v=$(cd "$tools" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
major=${v#v}; major=${major%%.*}
minor=${v#v*.}; minor=${minor%%.*}
flags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
echo "$flags"
