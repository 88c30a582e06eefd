#!/usr/bin/env bash
# bench/run's arguments: help, a preset it cannot use and an unknown
# argument are answered before anything is built or run.
set -uo pipefail
run="$(dirname "$0")/run"
failures=0

expect() { # WHAT WANT_STATUS WANT_TEXT ARGS...
  local what=$1 want_status=$2 want_text=$3
  shift 3
  local out status
  out=$("$run" "$@" 2>&1)
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

expect "help names --preset" 0 "--preset=default" --help
expect "a sanitizer preset is refused" 2 \
  "--preset must be release or default, not 'asan'" --quick --preset=asan
expect "an empty preset is refused" 2 "not ''" --preset=
expect "an unknown argument is refused" 2 "unknown argument '--fast'" --fast
[[ $failures -eq 0 ]]
