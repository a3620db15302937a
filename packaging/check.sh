#!/usr/bin/env bash
# Build the .deb and .rpm (packaging/build.sh), install the .deb on this
# machine and check that it is a working service: every file where the unit
# and the config expect it, the installed binary, config and man pages
# usable, the unit verified and its exposure OK or better; then remove it
# and check that only the conffiles stay; and check that the .rpm holds the
# same files. Needs root (or sudo), dpkg, rpm, man-db and systemd-analyze;
# .ci/run installs them. Exits non-zero at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=()
if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
fail() {
    echo "packaging/check.sh: $*" >&2
    exit 1
}
step() { echo "==> $*"; }

step "packaging/build.sh"
built=$(packaging/build.sh | tail -n 2)
deb=$(sed -n 1p <<<"$built")
rpm=$(sed -n 2p <<<"$built")
[[ -f $deb && -f $rpm ]] || fail "build.sh did not name a .deb and an .rpm: $built"
echo "    $deb"
echo "    $rpm"

# The files (not directories) a package installs, one absolute path a line.
deb_files() { dpkg-deb --fsys-tarfile "$1" | tar -t | grep -v '/$' | sed 's|^\./|/|' | sort; }
rpm_files() { rpm -qlp --nodigest --nosignature "$1" 2>/dev/null | sort; }
deb_list=$(deb_files "$deb")
conffiles=$(dpkg-deb --info "$deb" conffiles | sort)
echo "    $(wc -l <<<"$deb_list") files, conffiles: $(tr '\n' ' ' <<<"$conffiles")"

step "control: Recommends libreswan, never Depends on it"
control=$(dpkg-deb --field "$deb")
grep -qx 'Recommends: libreswan' <<<"$control" || fail "no 'Recommends: libreswan' in:\n$control"
if grep '^Depends:' <<<"$control" | grep -q libreswan; then fail "the .deb depends on libreswan"; fi
[[ $conffiles == *"/etc/swantrail/swantrail.toml"* ]] || fail "/etc/swantrail/swantrail.toml is not a conffile"

step "maintainer scripts: enable nothing, try-restart on upgrade"
scripts=$(mktemp -d)
trap 'rm -rf "$scripts"' EXIT
dpkg-deb --control "$deb" "$scripts/control"
# (deb-systemd-helper enable appears only under was-enabled: an upgrade
# keeps the operator's choice; the install itself is checked below.)
if grep -Eq 'deb-systemd-invoke (start|restart) ' "$scripts"/control/* 2>/dev/null; then
    fail "a maintainer script starts the service"
fi
grep -q 'try-restart' "$scripts/control/postinst" || fail "postinst does not try-restart on upgrade"

step "dpkg -i"
# A clean start: an earlier run of this check may have left the package.
if dpkg-query -W -f='${Status}' swantrail 2>/dev/null | grep -q 'install ok installed'; then
    "${sudo[@]}" dpkg -r swantrail >/dev/null
fi
"${sudo[@]}" dpkg -i "$deb"
installed=$(dpkg-query -L swantrail | sort)
while read -r path; do
    [[ -e $path ]] || fail "$path is in the package but not on disk"
    grep -qx "$path" <<<"$installed" || fail "$path is not listed by dpkg -L"
done <<<"$deb_list"

enabled=$(find /etc/systemd/system -name swantrail.service -path '*.wants/*' 2>/dev/null)
[[ -z $enabled ]] || fail "dpkg -i enabled the service: $enabled"

step "every file where the unit and the config expect it"
unit=/usr/lib/systemd/system/swantrail.service
[[ -f $unit ]] || fail "no $unit"
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
program=${exec_start%% *}
config=$(sed -n 's/.*--config \([^ ]*\).*/\1/p' <<<"$exec_start")
[[ -x $program ]] || fail "ExecStart= runs $program, which is not an executable"
[[ -f $config ]] || fail "ExecStart= reads $config, which is not installed"
reload=$(sed -n 's/^ExecReload=\([^ ]*\).*/\1/p' "$unit")
[[ -x $reload ]] || fail "ExecReload= runs $reload, which is missing"
[[ $(stat -c %a "$config") == 640 ]] || fail "$config is mode $(stat -c %a "$config"), want 0640"
# StateDirectory= and LogsDirectory= are what the config writes to.
state=$(sed -n 's/^StateDirectory=//p' "$unit")
logs=$(sed -n 's/^LogsDirectory=//p' "$unit")
grep -qx "state_dir = \"/var/lib/$state\"" "$config" || fail "state_dir in $config is not /var/lib/$state (StateDirectory=)"
sink_path=$(sed -n 's/^path = "\(\/var\/log\/[^"]*\)"/\1/p' "$config" | head -n 1)
[[ $sink_path == /var/log/$logs/* ]] || fail "the file sink writes $sink_path, outside /var/log/$logs (LogsDirectory=)"
grep -q "^$sink_path {" /etc/logrotate.d/swantrail || fail "/etc/logrotate.d/swantrail does not rotate $sink_path"
for f in /usr/share/man/man1/swantrail.1.gz /usr/share/man/man1/swantrail-run.1.gz \
    /usr/share/man/man5/swantrail.toml.5.gz /usr/share/bash-completion/completions/swantrail \
    /usr/share/zsh/vendor-completions/_swantrail /usr/share/fish/vendor_completions.d/swantrail.fish \
    /usr/share/doc/swantrail/docs/events.md /usr/share/doc/swantrail/LICENSE-MIT \
    /usr/share/doc/swantrail/LICENSE-APACHE /usr/share/doc/swantrail/copyright; do
    [[ -f $f ]] || fail "$f is not installed"
done

step "the installed binary, config and pages"
"$program" --version
"$program" check-config "$config"
for page in /usr/share/man/man1/swantrail.1.gz /usr/share/man/man5/swantrail.toml.5.gz; do
    text=$(MANWIDTH=80 man -l "$page") || fail "man -l $page failed"
    grep -q '^NAME' <<<"$text" || fail "man -l $page shows no NAME section:\n$text"
    # groff's own complaints (bad requests, unknown escapes) go to stderr.
    warnings=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
    [[ -z $warnings ]] || fail "man -l $page: $warnings"
    echo "    man -l $page: $(wc -l <<<"$text") lines"
done
bash -n /usr/share/bash-completion/completions/swantrail || fail "the bash completion does not parse"

step "systemd-analyze verify $unit"
verify=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify failed:\n$verify"
# A unit it merely names (ipsec.service in After=) need not exist here.
if grep -v 'ipsec.service' <<<"$verify" | grep -q .; then fail "systemd-analyze verify:\n$verify"; fi

step "systemd-analyze security --offline=true $unit"
security=$(systemd-analyze security --offline=true "$unit" 2>&1 || true)
overall=$(grep 'Overall exposure level' <<<"$security") || fail "no exposure figure:\n$security"
echo "    $overall"
level=$(sed -n 's/.*: *\([0-9.]*\) \([A-Z]*\).*/\2/p' <<<"$overall")
case $level in
PERFECT | SAFE | OK) ;;
*) fail "exposure $level is worse than OK" ;;
esac

step "dpkg -r: the conffiles stay, nothing else"
"${sudo[@]}" dpkg -r swantrail >/dev/null
while read -r path; do
    if grep -qx "$path" <<<"$conffiles"; then
        [[ -f $path ]] || fail "conffile $path was removed by dpkg -r"
    elif [[ -e $path ]]; then
        fail "$path is left after dpkg -r"
    fi
done <<<"$deb_list"
for dir in /usr/share/doc/swantrail; do
    [[ ! -e $dir ]] || fail "$dir is left after dpkg -r"
done
dpkg-query -W -f='${Status}\n' swantrail | grep -q 'config-files' || fail "dpkg does not keep swantrail's config files"

step "rpm -qlp lists the same files"
rpm_list=$(rpm_files "$rpm")
# Where the distributions differ: zsh's vendor directory; Debian's
# copyright file is generated by cargo-deb (the rpm has the licences as doc).
expected=$(sed -e 's|^/usr/share/zsh/vendor-completions/|/usr/share/zsh/site-functions/|' \
    -e '\|^/usr/share/doc/swantrail/copyright$|d' <<<"$deb_list" | sort)
if [[ $expected != "$rpm_list" ]]; then
    diff <(echo "$expected") <(echo "$rpm_list") >&2 || true
    fail "the .rpm and the .deb install different files (< deb, > rpm)"
fi
rpm -qp --nodigest --nosignature --configfiles "$rpm" 2>/dev/null | grep -qx /etc/swantrail/swantrail.toml ||
    fail "/etc/swantrail/swantrail.toml is not %config in the rpm"
rpm -qp --nodigest --nosignature --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpm" 2>/dev/null |
    grep -q '^cn /etc/swantrail/swantrail.toml$' || fail "/etc/swantrail/swantrail.toml is not %config(noreplace)"
rpm -qp --nodigest --nosignature --recommends "$rpm" 2>/dev/null | grep -q '^libreswan' || fail "the rpm does not recommend libreswan"
rpm -qp --nodigest --nosignature --scripts "$rpm" 2>/dev/null | grep -q 'try-restart swantrail.service' ||
    fail "the rpm does not try-restart on upgrade"
echo "    $(wc -l <<<"$rpm_list") files in both packages"

# promtool from Debian's prometheus package, unpacked beside the build (like
# syslog-ng in .ci/run): installing the package would start a Prometheus.
promtool=target/debian/prometheus/usr/bin/promtool
if [[ ! -x $promtool ]]; then
    step "unpack prometheus (for promtool) into target/debian/prometheus"
    debs=$(mktemp -d)
    if ! (cd "$debs" && apt-get download -qq prometheus); then
        "${sudo[@]}" apt-get update -qq
        (cd "$debs" && apt-get download -qq prometheus)
    fi
    mkdir -p target/debian/prometheus
    dpkg -x "$debs"/prometheus_*.deb target/debian/prometheus
    rm -rf "$debs"
fi
step "promtool check rules docs/prometheus-alerts.yml"
"$promtool" check rules docs/prometheus-alerts.yml
echo "==> packages OK"
