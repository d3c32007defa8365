#!/usr/bin/env bash
# Installs the Debian packages the one-node test cluster (test/cluster) runs on:
# containerd and runc for containers, the CNI plugins for pod networking, and
# iptables/conntrack for kube-proxy. Idempotent: installs only what is missing,
# and never starts a service (the test starts its own containerd, by PID).
set -euo pipefail

pkgs=(containerd runc containernetworking-plugins iptables conntrack)

if [[ $EUID -ne 0 ]]; then
  echo "install-node-packages: must run as root (apt-get install); the one-node cluster test needs root" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "install-node-packages: apt-get not found; install ${pkgs[*]} by hand" >&2
  exit 1
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

echo "installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# policy-rc.d answering 101 keeps the packages' services from starting.
cleanup_policy=0
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  cleanup_policy=1
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
((cleanup_policy)) && rm -f /usr/sbin/policy-rc.d
exit 0
