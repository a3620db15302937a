#!/usr/bin/env bash
# e2e/lab.sh - swantrail end to end, next to two real libreswan peers.
#
# Stages the project's lab (../shared/lab) with a scenario from e2e/ and a
# release build of swantrail, runs it (in a User-Mode-Linux guest where this
# kernel has no ESP; 6 to 10 minutes), then checks the events the daemons
# wrote against the plutos' own logs with `cargo test --test integration lab::e2e_lab --
# --ignored`, which also prints recall, precision and the share of right
# end reasons per daemon.
#
# Usage: sudo e2e/lab.sh [--libreswan 4.10|5.2] [--gateway] [OUT_DIR]
#        (SERIES_SECS=180 by default; SWANTRAIL_E2E_AUDIT=0 leaves pluto's
#        audit records out)
#
#   4.10 (default)  Debian 12's libreswan, installed on this machine;
#                   scenario e2e/scenario-swantrail.sh
#   5.2             Debian 13's libreswan from a trixie root built once by
#                   e2e/trixie-root.sh (cached under target/debian/);
#                   scenario e2e/scenario-swantrail-52.sh
#   --gateway       either version, scenario e2e/scenario-gateway.sh instead:
#                   thirty connections on west, every kind of daemon
#
# Needs root (network namespaces), the lab beside the project, and the
# Debian packages the lab installs (libreswan, user-mode-linux, ...).
#
# Exit status: 0 when every check passed; 1 when a check failed (a
# swantrail defect); 77 when this machine has no User-Mode-Linux (package
# user-mode-linux, which the lab needs and apt-get could not install): the
# lab cannot run here at all, nothing was checked; 3 when the lab is here
# but could not run (no lab, not root, no trixie root, the scenario broke):
# nothing was checked, and that is a failure to fix, not a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
version=4.10
if [[ ${1:-} == --libreswan ]]; then
    version=${2:?--libreswan needs 4.10 or 5.2}
    shift 2
fi
case $version in
4.10) scenario=swantrail ;;
5.2) scenario=swantrail-52 ;;
*) echo "e2e/lab.sh: unknown --libreswan $version (4.10 or 5.2)" >&2; exit 2 ;;
esac
if [[ ${1:-} == --gateway ]]; then
    scenario=gateway
    shift
fi
lab=${SWANTRAIL_LAB:-../shared/lab}
[ -f "$lab/realswan.sh" ] || { echo "e2e/lab.sh: no lab at $lab: nothing checked" >&2; exit 3; }
[ "$(id -u)" = 0 ] || { echo "e2e/lab.sh: needs root (network namespaces): nothing checked" >&2; exit 3; }
# The lab runs its plutos in a User-Mode-Linux guest (realswan.sh needs the
# package whether or not this kernel could hold an ESP SA itself): without
# it the lab cannot run on this machine, the one case CI skips (exit 77).
if ! command -v linux.uml >/dev/null; then
    echo "e2e: installing user-mode-linux"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends user-mode-linux \
        || ! command -v linux.uml >/dev/null; then
        echo "e2e/lab.sh: no User-Mode-Linux on this machine (package user-mode-linux): the lab cannot run here; nothing checked" >&2
        exit 77
    fi
fi
out=${1:-$(mktemp -d "${TMPDIR:-/tmp}/swantrail-e2e.XXXXXX")}
mkdir -p "$out"
out=$(cd "$out" && pwd -P)

if [[ $version == 5.2 ]]; then
    root=target/debian/trixie-root
    if ! e2e/trixie-root.sh "$root"; then
        echo "e2e/lab.sh: no trixie root with libreswan 5.2 (see above): nothing checked" >&2
        exit 3
    fi
    root=$(cd "$root" && pwd -P)
    # The guest may mount the root from the host by its path (hostfs), where
    # a blank or a comma would split it.
    case $root in *[!A-Za-z0-9._/+@-]*)
        echo "e2e/lab.sh: the trixie root's path $root has characters the UML guest cannot take (use [A-Za-z0-9._/+@-]): nothing checked" >&2
        exit 3 ;;
    esac
    # The guest binds the output directory into the root at the same path.
    mkdir -p "$root$out"
fi

# On 4.10, and in the gateway scenario of either version, the run adds
# pluto's Linux audit records: Debian's auditd in the guest (whose root is
# this machine's), a daemon on west that reads them, and (4.10's own
# scenario) a last phase of SAs shorter than one poll, which the snapshot
# daemons are judged on only as far as their listings could see them
# (tests/integration/lab/e2e_lab.rs). SWANTRAIL_E2E_AUDIT=0 leaves them out.
audit=${SWANTRAIL_E2E_AUDIT:-1}
[[ $version == 4.10 || $scenario == gateway ]] || audit=0
if [[ $audit == 1 && ! -x /usr/sbin/auditd ]]; then
    echo "e2e: installing auditd"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends auditd; then
        echo "e2e/lab.sh: cannot install auditd: nothing checked" >&2
        exit 3
    fi
fi

cargo build --release --bin swantrail
stage=$(mktemp -d "${TMPDIR:-/tmp}/swantrail-lab.XXXXXX")
trap 'rm -rf "$stage"; [[ -z ${root:-} ]] || rmdir "$root$out" 2>/dev/null || true' EXIT
cp -r "$lab"/lib.sh "$lab"/scenario.sh "$lab"/scenario-a.sh "$lab"/realswan.sh "$lab"/teardown.sh "$lab"/uml "$stage"/
cp e2e/scenario-swantrail.sh e2e/scenario-swantrail-52.sh e2e/scenario-gateway.sh e2e/swantrail-daemons.sh "$stage"/
cp target/release/swantrail "$stage"/swantrail
[[ -z ${root:-} ]] || echo "$root" > "$stage"/trixie-root.path
[[ $audit != 1 ]] || touch "$stage"/audit.enabled

echo "e2e: libreswan $version, scenario $scenario, output in $out"
if ! "$stage"/realswan.sh --scenario "$scenario" --series-secs "${SERIES_SECS:-180}" --out "$out"; then
    echo "e2e/lab.sh: the lab scenario did not finish (see $out/state/scenario.log): nothing checked" >&2
    exit 3
fi
echo "e2e: captures in $out/captures; checking the events against the pluto logs"
SWANTRAIL_E2E_OUT="$out" SWANTRAIL_E2E_LIBRESWAN="$version" SWANTRAIL_E2E_SCENARIO="$scenario" \
    cargo test --test integration lab::e2e_lab -- --ignored --nocapture || exit 1
