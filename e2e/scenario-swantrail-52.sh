# scenario-swantrail-52.sh - a libreswan 5.2 pair with swantrail watching
# west; sourced by the lab's scenario.sh after lib.sh.
#
# Both plutos run from a Debian 13 (trixie) root (e2e/trixie-root.sh) with
# chroot inside each peer's network namespace; /proc, /dev, /run and the
# output directory are bound into the root at the same paths, so every path
# pluto is given means the same inside and outside. The root is only read;
# where the guest's own /tmp hides it (a clone under /tmp), it is mounted
# from the host at its path first, so the lab runs from a clone anywhere.
# Every whack call goes through the root's own whack (a 4.10 whack cannot
# talk to a 5.2 pluto).
# e2e/lab.sh stages this file with the lab, e2e/swantrail-daemons.sh (the
# daemons' config, start and stop), the binary ($LAB/swantrail) and
# $LAB/trixie-root.path, which names the root.
#
# Next to west's pluto run three `swantrail run` daemons polling every 2 s:
# "west" (`--status` + `--trafficstatus`), "west-light"
# (`--trafficstatus` + `--showstates`) and "west-log" (as "west", and
# west's pluto log file through a `pluto-log` source). They stay up when
# west's pluto is restarted at the end.
#
# What happens on west (the observed side), every connection brought up
# with --initiate (so 5.x keeps it "up" and revives it):
#   v2-tun       IKEv2, default lifetimes: forced --rekey-child, --rekey-ike
#   v2-short     IKEv2, short lifetimes: Child and IKE rekeys on their own
#   v2-delchild  IKEv2: east deletes its Child SA (west revives it)
#   v2-delike    IKEv2: east deletes its IKE SA (west revives it and the child)
#   v1-norekey   IKEv1, rekey=no, short lifetimes: expires, is revived
#   v2-refused   IKEv2 with a PSK east does not share: AUTHENTICATION_FAILED,
#                revived and refused again
#   v2-deadpeer  IKEv2 towards an address nobody answers
#   then west's pluto is stopped and started again (half-open negotiations
#   end with it), and v2-tun and v2-short are initiated once more.
#   inner west lo 198.51.100.{1,17,33,49,65}/32  east lo 198.51.100.{129,145,161,177,193}/32

ROOT52=$(cat "$LAB/trixie-root.path")
. "$LAB/swantrail-daemons.sh"
SWANTRAIL_WHACK="\"/usr/sbin/chroot\", \"$ROOT52\", \"/usr/libexec/ipsec/whack\""
WHACK52="$ROOT52/usr/libexec/ipsec/whack"
WEST_INNER="198.51.100.1 198.51.100.17 198.51.100.33 198.51.100.49 198.51.100.65"
EAST_INNER="198.51.100.129 198.51.100.145 198.51.100.161 198.51.100.177 198.51.100.193"
UNANSWERED="192.0.2.99"
PSK_IDS="@west-v2 @east-v2 @west-short @east-short @west-dc @east-dc @west-di @east-di @west-v1 @east-v1 @west-dead @nobody-v2"
SERIES="west:status:series west:trafficstatus:series-trafficstatus west:showstates:series-showstates"

# The lab's query and action helpers, through the 5.2 whack.
W() { local s=$1; shift; chroot "$ROOT52" /usr/libexec/ipsec/whack --ctlsocket "$ST/$s/run/pluto.ctl" "$@"; }
WA() {
    local s=$1; shift
    echo "### $(date +%s) $s: whack $*" >> "$CAP/whack-actions.txt"
    timeout 90 chroot "$ROOT52" /usr/libexec/ipsec/whack --ctlsocket "$ST/$s/run/pluto.ctl" "$@" \
        >> "$CAP/whack-actions.txt" 2>&1
}

bind_root() {   # the root where this kernel sees it, then /proc, /dev, /run and the output dir in it
    local d
    # The User-Mode-Linux guest mounts its own tmpfs on /tmp, /run and
    # /dev/shm, which hide a root kept under them (a clone under /tmp):
    # the root is then mounted from the host through hostfs, read-only, at
    # the same path, as uml/init.sh does for the lab and output directories.
    if [ ! -x "$WHACK52" ] && [ "$(cat "$ST/mode" 2>/dev/null)" = uml ]; then
        mkdir -p "$ROOT52" && mount -r -t hostfs -o "$ROOT52" hostfs "$ROOT52" \
            && ROOT52_MOUNTED=1 && log "5.2 root $ROOT52 mounted from the host (hidden in the guest)"
    fi
    [ -x "$WHACK52" ] || { log "no 5.2 root at $ROOT52 (not visible on this kernel)"; exit 2; }
    for d in /proc /dev /run; do
        mountpoint -q "$ROOT52$d" || mount --rbind "$d" "$ROOT52$d" || { log "cannot bind $d"; exit 2; }
    done
    [ -d "$ROOT52$OUT" ] || { log "no mount point $ROOT52$OUT (e2e/lab.sh makes it)"; exit 2; }
    mountpoint -q "$ROOT52$OUT" || mount --bind "$OUT" "$ROOT52$OUT" || { log "cannot bind $OUT"; exit 2; }
    log "5.2 root $ROOT52 bound: $(chroot "$ROOT52" /usr/sbin/ipsec --version | head -1)"
}
unbind_root() {
    local d
    for d in "$OUT" /run /dev /proc; do umount -l "$ROOT52$d" 2>/dev/null; done
    [ -z "${ROOT52_MOUNTED:-}" ] || umount -l "$ROOT52" 2>/dev/null
}

init_side() {   # as the lab's, with the 5.2 certutil, plus a PSK only $1 has
    local s=$1
    rm -rf "${ST:?}/$s"; mkdir -p "$ST/$s/run" "$ST/$s/nss"
    chroot "$ROOT52" /usr/sbin/ipsec initnss --nssdir "$ST/$s/nss" >/dev/null
    cat > "$ST/$s/ipsec.secrets" <<EOS
# one PSK for every ID pair used in this lab
$PSK_IDS : PSK "$PSK"
# v2-refused: the two sides hold different keys, so east refuses west
@west-ref @east-ref : PSK "$s-only-psk-0123456789abcdef0123456789abc"
EOS
    chmod 600 "$ST/$s/ipsec.secrets"
}

config_setup() {
    cat <<EOC
config setup
	plutodebug=none
	dumpdir=$ST/$1/run
	uniqueids=yes
	logtime=yes
	logappend=yes
	ikev1-policy=accept
EOC
}

start_pluto() {
    local s=$1 i
    rm -f "$ST/$s/run/pluto.ctl" "$ST/$s/run/pluto.pid"
    ip netns exec $s chroot "$ROOT52" /usr/libexec/ipsec/pluto --nofork \
        --config "$ST/$s/ipsec.conf" \
        --secretsfile "$ST/$s/ipsec.secrets" \
        --ipsecdir "$ST/$s" \
        --nssdir "$ST/$s/nss" \
        --rundir "$ST/$s/run" \
        --logfile "$ST/$s/pluto.log" \
        >>"$ST/$s/pluto.stdout" 2>&1 &
    echo $! > "$ST/$s/pluto.pid"      # ip netns exec and chroot exec pluto: same PID
    for i in $(seq 1 50); do
        W $s --globalstatus >/dev/null 2>&1 && break
        sleep 0.2
    done
    sleep 1
    if W $s --status | grep -q 'Total IPsec connections: loaded 0,'; then
        log "$s: conns not auto-loaded, running addconn --autoall"
        ip netns exec $s chroot "$ROOT52" /usr/libexec/ipsec/addconn --config "$ST/$s/ipsec.conf" \
            --ctlsocket "$ST/$s/run/pluto.ctl" --autoall >> "$ST/$s/addconn.log" 2>&1
    fi
    log "$s pluto started pid=$(cat "$ST/$s/pluto.pid"): $(W $s --status | grep -m1 'Total IPsec connections')"
    [ -f "$ST/swantrail/$s/pid" ] || [ $s != west ] || { start_swantrail west; start_swantrail west-light; start_swantrail west-log; }
}

# ---------------------------------------------------------------- configs
write_configs() {
    init_side west
    init_side east
    { config_setup west; cat <<EOC

conn %default
	authby=secret
	left=192.0.2.1
	right=192.0.2.2
	auto=add

conn v2-tun
	keyexchange=ikev2
	leftid=@west-v2
	rightid=@east-v2
	leftsubnet=198.51.100.0/28
	leftsourceip=198.51.100.1
	rightsubnet=198.51.100.128/28

conn v2-short
	keyexchange=ikev2
	leftid=@west-short
	rightid=@east-short
	leftsubnet=198.51.100.32/28
	leftsourceip=198.51.100.33
	rightsubnet=198.51.100.160/28
	ikelifetime=100s
	salifetime=50s
	rekeymargin=15s
	rekeyfuzz=50%

conn v2-delchild
	keyexchange=ikev2
	leftid=@west-dc
	rightid=@east-dc
	leftsubnet=198.51.100.48/28
	leftsourceip=198.51.100.49
	rightsubnet=198.51.100.176/28

conn v2-delike
	keyexchange=ikev2
	leftid=@west-di
	rightid=@east-di
	leftsubnet=198.51.100.64/28
	leftsourceip=198.51.100.65
	rightsubnet=198.51.100.192/28

conn v1-norekey
	keyexchange=ikev1
	leftid=@west-v1
	rightid=@east-v1
	leftsubnet=198.51.100.16/28
	leftsourceip=198.51.100.17
	rightsubnet=198.51.100.144/28
	rekey=no
	ikelifetime=150s
	salifetime=60s
	rekeymargin=10s

conn v2-refused
	keyexchange=ikev2
	leftid=@west-ref
	rightid=@east-ref
	leftsubnet=198.51.100.80/28
	rightsubnet=198.51.100.208/28

conn v2-deadpeer
	keyexchange=ikev2
	right=192.0.2.99
	leftid=@west-dead
	rightid=@nobody-v2
	leftsubnet=198.51.100.96/28
	rightsubnet=198.51.100.224/28
EOC
    } > "$ST/west/ipsec.conf"

    { config_setup east; cat <<EOC

conn %default
	authby=secret
	left=192.0.2.2
	right=192.0.2.1
	auto=add

conn v2-tun
	keyexchange=ikev2
	leftid=@east-v2
	rightid=@west-v2
	leftsubnet=198.51.100.128/28
	leftsourceip=198.51.100.129
	rightsubnet=198.51.100.0/28

conn v2-short
	keyexchange=ikev2
	leftid=@east-short
	rightid=@west-short
	leftsubnet=198.51.100.160/28
	leftsourceip=198.51.100.161
	rightsubnet=198.51.100.32/28

conn v2-delchild
	keyexchange=ikev2
	leftid=@east-dc
	rightid=@west-dc
	leftsubnet=198.51.100.176/28
	leftsourceip=198.51.100.177
	rightsubnet=198.51.100.48/28

conn v2-delike
	keyexchange=ikev2
	leftid=@east-di
	rightid=@west-di
	leftsubnet=198.51.100.192/28
	leftsourceip=198.51.100.193
	rightsubnet=198.51.100.64/28

conn v1-norekey
	keyexchange=ikev1
	leftid=@east-v1
	rightid=@west-v1
	leftsubnet=198.51.100.144/28
	leftsourceip=198.51.100.145
	rightsubnet=198.51.100.16/28
	rekey=no

conn v2-refused
	keyexchange=ikev2
	leftid=@east-ref
	rightid=@west-ref
	leftsubnet=198.51.100.208/28
	rightsubnet=198.51.100.80/28
EOC
    } > "$ST/east/ipsec.conf"
}

east_serial() {   # $1 connection, $2 state-name pattern: east's serial of it
    W east --showstates 2>/dev/null | grep -E "\"$1\"[^ ]* .*$2" | sed -n 's/^#\([0-9]*\):.*/\1/p' | head -1
}

# ================================================================= main
if [ "${LAB52_SMOKE:-}" != 1 ]; then
: > "$TL"
log "scenario swantrail-52 start on $(uname -sr); series ${SERIES_SECS}s"
bind_root
setup_net
write_configs
start_pluto west
start_pluto east
capture 00-loaded west east

log "initiate v2-deadpeer v2-refused (async)"
W west --name v2-deadpeer --initiate --asynchronous >> "$CAP/whack-actions.txt" 2>&1
W west --name v2-refused --initiate --asynchronous >> "$CAP/whack-actions.txt" 2>&1
for c in v2-tun v2-short v2-delchild v2-delike v1-norekey; do
    log "initiate $c"
    WA west --name $c --initiate
done
for c in v2-tun v2-short v2-delchild v2-delike v1-norekey; do
    wait_for 60 conn_up $c || log "WARNING: $c child SA not up"
done
capture 01-established west east

start_series
PINGERS=""
for a in 1:129 33:161 17:145; do
    ip netns exec west ping -n -q -i3 -s500 -I 198.51.100.${a%%:*} 198.51.100.${a##*:} >/dev/null 2>&1 &
    PINGERS="$PINGERS $!"
done
T0=$(date +%s)

sleep_until $((T0 + SERIES_SECS / 4))
n=$(east_serial v2-delchild ESTABLISHED_CHILD_SA)
log "east deletes v2-delchild's Child SA (east #$n)"
[ -n "$n" ] && WA east --deletestate "$n"
sleep 15
n=$(east_serial v2-delike 'ESTABLISHED_IKE_SA')
log "east deletes v2-delike's IKE SA (east #$n)"
[ -n "$n" ] && WA east --deletestate "$n"

sleep_until $((T0 + SERIES_SECS / 2))
log "forced rekey: whack --rekey-child --name v2-tun"
WA west --rekey-child --name v2-tun
sleep 12
log "forced rekey: whack --rekey-ike --name v2-tun"
WA west --rekey-ike --name v2-tun

sleep_until $((T0 + SERIES_SECS))
capture 02-before-restart west east
for p in $PINGERS; do kill $p 2>/dev/null; wait $p 2>/dev/null; done

log "restart west's pluto"
stop_pluto west TERM
sleep 4
start_pluto west
for c in v2-tun v2-short; do
    log "initiate $c"
    WA west --name $c --initiate
done
wait_for 60 conn_up v2-short || log "WARNING: v2-short not up after the restart"
sleep 10
capture 03-restarted west east

stop_series
sleep 5   # let the last polls see the final state
stop_swantrail west TERM
stop_swantrail west-light TERM
stop_swantrail west-log TERM
finish
unbind_root
fi
