#!/usr/bin/env bash
# bench/run's arguments: what it builds for each preset, and the answers to
# help, a preset it cannot use and an unknown argument. It runs a copy of
# bench/run beside a stand-in scripts/lib.sh whose residency_build prints
# its arguments and ends the run, so nothing is installed, built or
# benchmarked whatever the parsing does.
set -uo pipefail
source_dir="$(cd "$(dirname "$0")/.." && pwd)"
root=$(mktemp -d "${TMPDIR:-/tmp}/bench-run-args.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bench" "$root/scripts"
cp "$source_dir/bench/run" "$root/bench/run"
cat >"$root/scripts/lib.sh" <<'STUB'
residency_root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }
residency_build() { echo "residency_build $*"; exit 0; }
STUB
failures=0

expect() { # WHAT WANT_STATUS WANT_TEXT ARGS...
  local what=$1 want_status=$2 want_text=$3
  shift 3
  local out status
  out=$(bash "$root/bench/run" "$@" 2>&1)
  status=$?
  if [[ $status -ne $want_status ]]; then
    echo "FAIL $what: exit status $status, expected $want_status; output:"
    echo "$out"
    failures=$((failures + 1))
  elif [[ $out != *"$want_text"* ]]; then
    echo "FAIL $what: output lacks '$want_text':"
    echo "$out"
    failures=$((failures + 1))
  else
    echo "ok   $what"
  fi
}

suites="crypto_bench key_service_bench e2e_bench rados_bench"
expect "a release tree by default" 0 "residency_build release $suites"
expect "--preset=default builds the tests' tree" 0 \
  "residency_build default $suites" --quick --preset=default
expect "--preset=release" 0 "residency_build release $suites" \
  --preset=release
expect "help names --preset" 0 "--preset=default" --help
expect "a sanitizer preset is refused" 2 \
  "--preset must be release or default, not 'asan'" --quick --preset=asan
expect "an empty preset is refused" 2 "not ''" --preset=
expect "a preset without '=' is refused" 2 "write --preset=NAME" \
  --preset default
expect "an unknown argument is refused" 2 "unknown argument '--fast'" --fast
[[ $failures -eq 0 ]]
