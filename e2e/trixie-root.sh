#!/usr/bin/env bash
# e2e/trixie-root.sh - a Debian 13 (trixie) root with the real libreswan 5.2,
# for the lab's 5.x pair (e2e/scenario-swantrail-52.sh runs pluto from it
# with chroot inside each peer's network namespace).
#
# Usage: sudo e2e/trixie-root.sh [DIR]   (default target/debian/trixie-root)
#
# Built once with mmdebstrap from the mirror this machine's apt uses, then
# reused: a root that already holds /usr/libexec/ipsec/pluto is kept. The
# build goes to DIR.new and is renamed into place only when complete, so an
# interrupted build never looks like a finished one.
#
# Exit status: 0 with the root in place; 3 when it cannot be built here (not
# root, no mmdebstrap, no mirror): the reason is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-target/debian/trixie-root}
fail() { echo "e2e/trixie-root.sh: cannot build the trixie root: $*" >&2; exit 3; }

if [[ -x $root/usr/libexec/ipsec/pluto ]]; then
    echo "trixie root: $root ($(cat "$root/.libreswan-version" 2>/dev/null || echo cached))"
    exit 0
fi
[[ $(id -u) -eq 0 ]] || fail "needs root (mmdebstrap in root mode, chroot)"
if ! command -v mmdebstrap >/dev/null; then
    echo "==> apt-get install mmdebstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null \
        || fail "mmdebstrap is not installed and apt-get could not install it"
fi

# The mirror: the first Debian archive URI this machine's apt is set up with
# (deb822 sources or a one-line sources.list), so the build goes where apt
# already may go.
mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)\/\{0,1\}$/\1/p' | head -1)
if [[ -z $mirror ]]; then
    mirror=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        | awk '$2 ~ /\/debian\/?$/ {print $2; exit}')
fi
mirror=${mirror:-http://deb.debian.org/debian}
mirror=${mirror%/}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -r $keyring ]] || fail "no $keyring (package debian-archive-keyring)"

echo "==> mmdebstrap trixie from $mirror into $root"
rm -rf "$root.new"
mkdir -p "$(dirname "$root")"
if ! mmdebstrap --quiet --variant=minbase --include=libreswan,iproute2 \
        --keyring="$keyring" trixie "$root.new" "deb $mirror trixie main"; then
    rm -rf "$root.new"
    fail "mmdebstrap trixie from $mirror failed (see above)"
fi
[[ -x $root.new/usr/libexec/ipsec/pluto ]] || fail "the new root has no /usr/libexec/ipsec/pluto"
chroot "$root.new" dpkg-query -W libreswan > "$root.new/.libreswan-version"
rm -rf "$root"
mv "$root.new" "$root"
echo "trixie root: $root ($(cat "$root/.libreswan-version"))"
