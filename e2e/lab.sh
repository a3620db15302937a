#!/usr/bin/env bash
# e2e/lab.sh - swantrail end to end, next to two real libreswan 4.10 peers.
#
# Stages the project's lab (../shared/lab) with the scenario
# e2e/scenario-swantrail.sh and a release build of swantrail, runs it (in a
# User-Mode-Linux guest where this kernel has no ESP; about 6 minutes),
# then checks the events both daemons wrote against the plutos' own logs
# with `cargo test --test e2e_lab -- --ignored`.
#
# Usage: sudo e2e/lab.sh [OUT_DIR]     (SERIES_SECS=180 by default)
# Needs root (network namespaces), the lab beside the project, and the
# Debian packages the lab installs (libreswan, user-mode-linux, ...).
#
# Exit status: 0 when every check passed; 1 when a check failed (a
# swantrail defect); 3 when the lab itself could not run here (no lab, not
# root, no UML, the scenario broke): nothing was checked.
set -euo pipefail
cd "$(dirname "$0")/.."
lab=${SWANTRAIL_LAB:-../shared/lab}
[ -f "$lab/realswan.sh" ] || { echo "e2e/lab.sh: no lab at $lab: nothing checked" >&2; exit 3; }
[ "$(id -u)" = 0 ] || { echo "e2e/lab.sh: needs root (network namespaces): nothing checked" >&2; exit 3; }
out=${1:-$(mktemp -d "${TMPDIR:-/tmp}/swantrail-e2e.XXXXXX")}
mkdir -p "$out"
out=$(cd "$out" && pwd -P)

cargo build --release --bin swantrail
stage=$(mktemp -d "${TMPDIR:-/tmp}/swantrail-lab.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cp -r "$lab"/lib.sh "$lab"/scenario.sh "$lab"/scenario-a.sh "$lab"/realswan.sh "$lab"/teardown.sh "$lab"/uml "$stage"/
cp e2e/scenario-swantrail.sh "$stage"/
cp target/release/swantrail "$stage"/swantrail

if ! "$stage"/realswan.sh --scenario swantrail --series-secs "${SERIES_SECS:-180}" --out "$out"; then
    echo "e2e/lab.sh: the lab scenario did not finish (see $out/state/scenario.log): nothing checked" >&2
    exit 3
fi
echo "e2e: captures in $out/captures; checking the events against the pluto logs"
SWANTRAIL_E2E_OUT="$out" cargo test --test e2e_lab -- --ignored --nocapture || exit 1
