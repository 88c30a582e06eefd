# Shared by tests/run, sim/run and bench/run: install what is missing, then
# configure (once) and build (incrementally) a CMake preset.
# Source it; do not run it.

residency_root() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd
}

# residency_build PRESET [TARGET...]
residency_build() {
  local preset=$1
  shift
  local root
  root=$(residency_root)
  "$root/scripts/install-deps"
  # Configure on first use, and again when the presets changed (ninja does
  # not watch CMakePresets.json, so new cache variables would never arrive).
  if [[ ! -f "$root/build/$preset/build.ninja" ||
        "$root/CMakePresets.json" -nt "$root/build/$preset/CMakeCache.txt" ]]; then
    echo "residency: configuring build/$preset" >&2
    cmake --preset "$preset" -S "$root" >/dev/null
  fi
  local targets=()
  for t in "$@"; do targets+=(--target "$t"); done
  cmake --build "$root/build/$preset" -j "${RESIDENCY_JOBS:-2}" "${targets[@]}"
}
