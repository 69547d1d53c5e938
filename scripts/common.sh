# Shared by scripts/setup, scripts/run and scripts/test (sourced, not run).
#
# Knows where the repository and the tools cache are, which versions of the
# tools the project builds with, and how to print and time what it does.

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Every tool the scripts install lives here; PIXELATOR_TOOLS moves it.
tools_dir=${PIXELATOR_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/pixelator-tools}

trunk_version=0.21.14
binaryen_version=132
cargo_lambda_version=1.9.2
sam_cli_version=1.170.0

# A line saying what happens next.
say() {
    printf '\033[1m==> %s\033[0m\n' "$*"
}

# Prints a command, then runs it.
run() {
    printf '+ %s\n' "$*"
    "$@"
}

die() {
    printf '\033[1;31merror:\033[0m %s\n' "$*" >&2
    exit 1
}

# The wasm-bindgen version Cargo.lock pins: the CLI must be exactly this one.
wasm_bindgen_version() {
    awk '/^\[\[package\]\]/ { in_package = 0 }
         /^name = "wasm-bindgen"$/ { in_package = 1; next }
         in_package && /^version = / { gsub(/"/, "", $3); print $3; exit }' \
        "$repo_root/Cargo.lock"
}

# Puts the cached tools first on PATH for this script and what it starts.
use_tools() {
    export PATH="$tools_dir/bin:$PATH"
}

# Runs one named stage, timing it; the timings are printed by print_timings.
stage_names=()
stage_seconds=()
stage() {
    local name=$1
    shift
    say "$name"
    local started=$SECONDS
    "$@"
    stage_names+=("$name")
    stage_seconds+=($((SECONDS - started)))
}

print_timings() {
    local index
    say "timings"
    for index in "${!stage_names[@]}"; do
        printf '%6ss  %s\n' "${stage_seconds[$index]}" "${stage_names[$index]}"
    done
}
