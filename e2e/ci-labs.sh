#!/usr/bin/env bash
# e2e/ci-labs.sh - the end-to-end step of .ci/run: e2e/lab.sh next to Debian
# 12's libreswan 4.10, then Debian 13's 5.2, when the lab is beside the
# project, each with its own scenario and then the gateway scenario
# (e2e/scenario-gateway.sh); then every run's `e2e score` lines together.
#
# Its job is to make CI say whether the end-to-end checks ran. It must never
# pass a lab that is here but could not run: nothing was checked then, and a
# green CI would hide it.
#
# Usage: e2e/ci-labs.sh [VERSION...]   (default: 4.10 5.2; SWANTRAIL_LAB as
#        for e2e/lab.sh)
#
# Exit status: 0 when every run passed, or when none could run on this
# machine (no lab beside the project, or no User-Mode-Linux: e2e/lab.sh's
# exit 77), and then the last line of the output says so. Otherwise the
# first failed run's exit status, with a last line that names it: 1 a
# swantrail defect, 3 a lab that is here but could not run (not root, no
# trixie root, the scenario broke, ...), 2 a wrong argument.
set -euo pipefail
cd "$(dirname "$0")/.."
lab=${SWANTRAIL_LAB:-../shared/lab}
if [[ ! -f $lab/realswan.sh ]]; then
    echo "==> no lab at $lab: end-to-end checks skipped"
    exit 0
fi
versions=("$@")
((${#versions[@]})) || versions=(4.10 5.2)

runs=()
for version in "${versions[@]}"; do runs+=("$version" "$version --gateway"); done

scores=()
print_scores() { ((${#scores[@]} == 0)) || printf '%s\n' "${scores[@]}"; }
for i in "${!runs[@]}"; do
    run=${runs[$i]}
    # shellcheck disable=SC2086 # "VERSION [--gateway]" splits into its arguments
    set -- --libreswan $run
    echo "==> e2e/lab.sh $* (real pluto, about 8 minutes)"
    rc=0
    log=$(mktemp)
    # 4.10 also runs the daemon that reads pluto's Linux audit records
    # and the short-lived SAs of phase 08 (e2e/scenario-swantrail.sh); the
    # gateway scenario runs it on both versions.
    SERIES_SECS=150 e2e/lab.sh "$@" 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
    while IFS= read -r line; do scores+=("$line"); done < <(grep '^e2e score' "$log" || true)
    rm -f "$log"
    if [[ $rc -eq 77 ]]; then
        # Every version runs in the same guest: none of the rest can run.
        echo "==> scores against pluto's log"
        print_scores
        echo "==> no User-Mode-Linux on this machine: end-to-end checks skipped (libreswan ${runs[*]:i})"
        exit 0
    elif [[ $rc -ne 0 ]]; then
        print_scores
        echo "==> e2e/lab.sh $* failed with exit $rc (1: a check failed; 3: the lab could not run here, see above)"
        exit "$rc"
    fi
done
echo "==> scores against pluto's log"
print_scores
