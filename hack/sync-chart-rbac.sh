#!/usr/bin/env bash
# Copies controller-gen's ClusterRole (config/rbac/role.yaml, generated from the
# +kubebuilder:rbac markers in controllers/) into the Helm chart, whose
# controller ClusterRole template reads its rules from that file. Run after
# controller-gen (make manifests); the chart test TestChartRBACInSync fails on drift.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$root/charts/tokensmith/files"
cp "$root/config/rbac/role.yaml" "$root/charts/tokensmith/files/controller-role.yaml"
