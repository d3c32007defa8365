#!/usr/bin/env bash
# Runs every Go fuzz target in the module for the given time (default 3s).
# A fuzz target is a "func FuzzXxx(f *testing.F)" in a _test.go file.
set -euo pipefail
fuzztime=${1:-3s}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
count=0
while IFS= read -r file; do
  pkg="./$(dirname "$file")"
  for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)\(' "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/'); do
    echo "--- fuzz $pkg $target ($fuzztime)"
    if ! out=$(go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg" 2>&1); then
      echo "$out"
      # Go's fuzzer can stop with "context deadline exceeded" and no finding
      # when the time runs out while its workers are starting or stopping
      # (seen both ways on a loaded 2-core machine). Only that case is
      # retried, once, for 10s (longer than make test's 3s, shorter than
      # make fuzz's 2m); any real finding ("Failing input written to ...")
      # or other failure fails the run.
      if grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
        echo "--- fuzz $pkg $target: the fuzzer hit its deadline without a finding; retrying for 10s"
        go test -run='^$' -fuzz="^${target}\$" -fuzztime=10s "$pkg"
      else
        exit 1
      fi
    else
      echo "$out" | tail -n 3
    fi
    count=$((count + 1))
  done
done < <(git ls-files --cached --others --exclude-standard '*_test.go' | grep -v '^hack/tools/' | sort)
echo "fuzz: $count targets ran for $fuzztime each"
