#!/usr/bin/env bash
# bench/run's arguments and summary, and bench/compare's check of the build
# tree. It runs copies of both scripts beside a stand-in scripts/lib.sh
# whose residency_build prints its arguments and puts fake suites in
# place, so nothing is installed, built or benchmarked whatever the
# parsing does. A fake suite appends one figure and its peak RSS to the
# summary rows, as the real ones do.
set -uo pipefail
source_dir="$(cd "$(dirname "$0")/.." && pwd)"
root=$(mktemp -d "${TMPDIR:-/tmp}/bench-run-args.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bench" "$root/scripts"
cp "$source_dir/bench/run" "$source_dir/bench/compare" "$root/bench/"
cat >"$root/scripts/lib.sh" <<'STUB'
residency_root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }
residency_build() {
  echo "residency_build $*"
  local dir
  dir="$(residency_root)/build/$1/bench"
  mkdir -p "$dir"
  shift
  local suite
  for suite in "$@"; do
    cat >"$dir/$suite" <<'SUITE'
#!/usr/bin/env bash
suite=$(basename "$0")
printf '%s\tfake figure\t1.0 MB/s\t2.0 MB/s\t0.500\t-\t\n' "$suite" \
  >>"$RESIDENCY_BENCH_SUMMARY"
printf '%s\tpeak RSS\t1.0 MiB\n' "$suite" >>"$RESIDENCY_BENCH_SUMMARY"
SUITE
    chmod +x "$dir/$suite"
  done
}
STUB
failures=0
out=
status=0

fail() {
  echo "FAIL $1; output:"
  echo "$out"
  failures=$((failures + 1))
}

# expect WHAT WANT_STATUS WANT_TEXT ARGS...: runs bench/run with ARGS.
expect() {
  local what=$1 want_status=$2 want_text=$3
  shift 3
  out=$(bash "$root/bench/run" "$@" 2>&1)
  status=$?
  if [[ $status -ne $want_status ]]; then
    fail "$what: exit status $status, expected $want_status"
  elif [[ $out != *"$want_text"* ]]; then
    fail "$what: output lacks '$want_text'"
  else
    echo "ok   $what"
  fi
}

# The newest summary's rows; its first row names the build tree.
check_summary() { # WHAT PRESET
  local tsv first
  tsv=$(ls -t "$root"/bench/results/summary-*.tsv 2>/dev/null | head -n 1)
  first=$(head -n 1 "$tsv" 2>/dev/null)
  if [[ $first != $'bench/run\tbuild\t'"$2" ]]; then
    fail "$1: the summary's first row is '$first'"
  elif [[ $out != *"build/$2"* || $out != *"fake figure"* ]]; then
    fail "$1: the table does not name build/$2 or lacks the figures"
  elif grep -qx 'bench/run' <<<"$out"; then
    fail "$1: the build row shows in the table as a suite"
  else
    echo "ok   $1: summary"
  fi
  rm -rf "$root/bench/results"
}

suites="crypto_bench key_service_bench e2e_bench rados_bench"
expect "a release tree by default" 0 "residency_build release $suites"
check_summary "a release tree by default" release
expect "--preset=default runs the tests' tree" 0 \
  "residency_build default $suites" --quick --preset=default
check_summary "--preset=default" default
expect "--preset=release" 0 "residency_build release $suites" \
  --preset=release
rm -rf "$root/bench/results"
expect "help names --preset and ends with the exit status" 0 \
  "never changes the exit status." --help
[[ $out == *"--preset=default"* ]] || fail "help does not name --preset"
expect "a sanitizer preset is refused" 2 \
  "--preset must be release or default, not 'asan'" --quick --preset=asan
expect "an empty preset is refused" 2 "not ''" --preset=
expect "a preset without '=' is refused" 2 "write --preset=NAME" \
  --preset default
expect "an unknown argument is refused" 2 "unknown argument '--fast'" --fast

# bench/compare warns when the trees differ; a summary without the row
# came from a release tree.
row=$'crypto_bench\tfake figure\t1.0 MB/s\t2.0 MB/s\t0.500\t-\t'
printf '%s\n' "$row" >"$root/old.tsv"
printf 'bench/run\tbuild\trelease\n%s\n' "$row" >"$root/release.tsv"
printf 'bench/run\tbuild\tdefault\n%s\n' "$row" >"$root/default.tsv"
out=$(bash "$root/bench/compare" "$root/old.tsv" "$root/default.tsv" 2>&1)
if [[ $out == *"warning: OLD ran on build/release, NEW on build/default"* ]]
then echo "ok   compare warns across trees"
else fail "compare did not warn across trees"
fi
out=$(bash "$root/bench/compare" "$root/old.tsv" "$root/release.tsv" 2>&1)
if [[ $out != *warning* && $out == *"fake figure"* ]]
then echo "ok   compare is quiet within a tree"
else fail "compare warned within a tree"
fi
[[ $failures -eq 0 ]]
