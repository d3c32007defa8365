#!/usr/bin/env bash
# Runs every Go fuzz target in the module for the given time (default 3s).
# A fuzz target is a "func FuzzXxx(f *testing.F)" in a _test.go file.
#
# It does what "go test -run='^$' -fuzz=^FuzzXxx$" does, with two savings:
#
#   - Coverage instrumentation (-d=libfuzzer) covers this module's packages
#     only. "go test -fuzz" instruments every package the test links, so from
#     a cold cache it compiles the standard library and the whole Kubernetes
#     dependency tree a second time (about 15 of a cold "make test"'s 35
#     minutes). The parsers the targets exercise are ours; coverage of
#     client-go does not guide a mutation of an OAuth request body. The
#     dependencies are then the same compiled packages "go test" uses.
#   - Each package's test binary is built once ("go test -c") and every target
#     in it runs from that binary, instead of one build and link per target.
#
# The binary is run as "go test" runs it: from the package directory (so a
# failing input lands in testdata/fuzz/FuzzXxx and "go test -run=FuzzXxx/..."
# replays it) with the corpus cache under $(go env GOCACHE)/fuzz/<import path>
# (shared with plain "go test -fuzz" runs).
set -euo pipefail
fuzztime=${1:-3s}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
module=$(go list -m)
fuzzcache="$(go env GOCACHE)/fuzz"
bins=$(mktemp -d)
trap 'rm -rf "$bins"' EXIT

# Packages (directories) with fuzz targets, in order, and their targets.
dirs=()
declare -A targets=()
while IFS= read -r file; do
  dir=$(dirname "$file")
  found=$(sed -nE 's/^func (Fuzz[A-Za-z0-9_]+)\(.*/\1/p' "$file" | tr '\n' ' ')
  [[ -n $found ]] || continue
  [[ -v "targets[$dir]" ]] || dirs+=("$dir")
  targets[$dir]+="$found"
done < <(git ls-files --cached --others --exclude-standard '*_test.go' | grep -v '^hack/tools/' | sort)
if ((${#dirs[@]} == 0)); then
  echo "fuzz: no targets"
  exit 0
fi

# One go command builds every binary (in parallel, into $bins/<name>.test).
pkgs=()
for dir in "${dirs[@]}"; do pkgs+=("./$dir"); done
echo "--- fuzz: building ${#pkgs[@]} test binaries (instrumenting $module/...)"
go test -c -o "$bins/" -gcflags="$module/...=-d=libfuzzer" "${pkgs[@]}"

# fuzz runs one target of the binary built for dir, from dir, for $2.
fuzz() {
  local dir=$1 target=$2 time=$3
  # "go test -c -o dir/" names a binary after its import path's last element.
  (cd "$dir" && "$bins/${dir##*/}.test" -test.run='^$' -test.fuzz="^${target}\$" -test.fuzztime="$time" \
    -test.fuzzcachedir="$fuzzcache/$module/$dir" -test.paniconexit0 -test.timeout=10m)
}

count=0
for dir in "${dirs[@]}"; do
  for target in ${targets[$dir]}; do
    echo "--- fuzz ./$dir $target ($fuzztime)"
    if ! out=$(fuzz "$dir" "$target" "$fuzztime" 2>&1); then
      echo "$out"
      # Go's fuzzer can stop with "context deadline exceeded" and no finding
      # when the time runs out while its workers are starting or stopping
      # (seen both ways on a loaded 2-core machine). Only that case is
      # retried, once, for 10s (longer than make test's 3s, shorter than
      # make fuzz's 2m); any real finding ("Failing input written to ...")
      # or other failure fails the run.
      if grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
        echo "--- fuzz ./$dir $target: the fuzzer hit its deadline without a finding; retrying for 10s"
        fuzz "$dir" "$target" 10s
      else
        exit 1
      fi
    else
      if grep -q 'not built with coverage instrumentation' <<<"$out"; then
        echo "$out"
        echo "fuzz: ./$dir was built without coverage instrumentation"
        exit 1
      fi
      echo "$out" | tail -n 3
    fi
    count=$((count + 1))
  done
done
echo "fuzz: $count targets ran for $fuzztime each"
