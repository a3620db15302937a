# scenario-gateway.sh - a busy gateway: thirty connections on west, watched
# by every kind of swantrail daemon, through the events that snapshots
# alone tell apart worst; sourced by the lab's scenario.sh after lib.sh.
#
# It runs on either pair: libreswan 4.10 (this machine's, as
# e2e/scenario-swantrail.sh) or 5.2 (the trixie root named by
# $LAB/trixie-root.path, through e2e/scenario-swantrail-52.sh's functions).
# Next to west's pluto run the daemons of e2e/swantrail-daemons.sh: "west"
# and "west-light" (snapshots only), "west-audit" (snapshots and pluto's
# Linux audit records, auditd in the guest), "west-log" (snapshots and
# west's pluto log file). They poll every 2 s and stay
# up through everything, west's pluto restart included.
#
# What happens on west (the observed side):
#   g01..g20   IKEv2, salifetime 40-60 s with a 15 s margin and 100 % fuzz,
#              half of them with a 90 s IKE lifetime: a rekey a second,
#              several in one poll window
#   sh1..sh3   IKEv2, one IKE SA shared by three connections (same IDs,
#              other subnets); the IKE SA rekeyed by force, then deleted
#              by the peer, which takes the three Child SAs with it
#   v1a, v1b   IKEv1, two Quick Mode SAs on one ISAKMP SA, rekeying; later
#              terminated
#   pdel       IKEv2: east deletes its Child SA, west brings it back at
#              once on the same IKE SA (a revival, not a rekey)
#   lchild     IKEv2: west deletes its own Child SA (`--deletestate`) and
#              brings it back at once on the same IKE SA
#   ldel       IKEv2: west deletes the connection (`--delete`), adds it
#              back under the same name a little later, brings it up
#   coll       IKEv2: both ends rekey its Child SA at once, every packet
#              delayed 1.5 s by netem on the link: a rekey collision
#   v2-deadpeer IKEv2 towards an address nobody answers, half-open from the
#              start
#   then east's pluto is SIGKILLed: west finds the IKE SAs dead by liveness
#   and, once east is back, brings its connections up again; last, west's
#   pluto is stopped and started (the half-open negotiation ends with it)
#   and two connections are brought up once more.

. "$LAB/swantrail-daemons.sh"
if [ -f "$LAB/trixie-root.path" ]; then
    # The 5.2 pair's functions (bind_root, W, WA, init_side, config_setup,
    # start_pluto), without its own run.
    LAB52_SMOKE=1 . "$LAB/scenario-swantrail-52.sh"
    GW_VERSION=5.2
    GW_WHACK="chroot $ROOT52 /usr/libexec/ipsec/whack"
    GW_ADDCONN="chroot $ROOT52 /usr/libexec/ipsec/addconn"
    GW_REKEY_CHILD=--rekey-child
    GW_IKEV2=keyexchange=ikev2
    GW_IKEV1=keyexchange=ikev1
    # 5.x revives a connection that was brought up; dpdaction= is gone.
    GW_DPD="dpddelay=5s
	retransmit-timeout=15s"
else
    SWANTRAIL_WHACK="\"$IPSEC\", \"whack\""
    GW_VERSION=4.10
    GW_WHACK=/usr/libexec/ipsec/whack
    GW_ADDCONN=/usr/libexec/ipsec/addconn
    GW_REKEY_CHILD=--rekey-ipsec
    GW_IKEV2=ikev2=yes
    GW_IKEV1=ikev2=no
    GW_DPD="dpddelay=5s
	retransmit-timeout=15s
	dpdaction=restart"
fi
WEST_INNER=""
EAST_INNER=""
UNANSWERED="192.0.2.99"
GW_CONNS=""
PSK_IDS="@west-sh @east-sh @west-v1g @east-v1g @west-dead @nobody-v2"
for i in $(seq -w 1 20); do GW_CONNS="$GW_CONNS g$i"; PSK_IDS="$PSK_IDS @west-g$i @east-g$i"; done
for c in pdel lchild ldel coll; do PSK_IDS="$PSK_IDS @west-$c @east-$c"; done
SERIES="west:status:series west:trafficstatus:series-trafficstatus"
GW_DAEMONS="west west-light west-audit west-log"

# ---------------------------------------------------------------- configs
# conn $1 with subnet number $2 on side $3 (west or east), IDs @west-$4 /
# @east-$4, then the extra lines $5.
gw_conn() {
    local name=$1 n=$2 side=$3 id=$4 extra=${5:-} me=west peer=east mine=1 theirs=2
    if [ "$side" = east ]; then me=east; peer=west; mine=2; theirs=1; fi
    printf '\nconn %s\n\tleftid=@%s-%s\n\trightid=@%s-%s\n\tleftsubnet=10.%d.%d.0/24\n\trightsubnet=10.%d.%d.0/24\n' \
        "$name" "$me" "$id" "$peer" "$id" "$mine" "$((10#$n))" "$theirs" "$((10#$n))"
    [ -z "$extra" ] || printf '%s\n' "$extra"
}

gw_configs() {   # $1 side
    local s=$1 left=192.0.2.1 right=192.0.2.2 i life
    if [ "$s" = east ]; then left=192.0.2.2; right=192.0.2.1; fi
    config_setup "$s"
    printf '\nconn %%default\n\tauthby=secret\n\t%s\n\tkeyingtries=%%forever\n\tleft=%s\n\tright=%s\n\tauto=add\n' \
        "$GW_IKEV2" "$left" "$right"
    # West finds a dead peer by liveness; east, the responder, does not probe.
    [ "$s" = east ] || printf '\t%s\n' "$GW_DPD"
    for i in $(seq -w 1 20); do
        life=""
        if [ "$s" = west ]; then
            # 40, 45, ... 60 s, and every other one a 90 s IKE SA
            life="	salifetime=$((40 + (10#$i % 5) * 5))s
	rekeymargin=15s
	rekeyfuzz=100%"
            [ $((10#$i % 2)) = 1 ] && life="$life
	ikelifetime=90s"
        fi
        gw_conn "g$i" "$i" "$s" "g$i" "$life"
    done
    for i in 1 2 3; do gw_conn "sh$i" "$((20 + i))" "$s" sh; done
    life=""
    [ "$s" = west ] && life="	salifetime=50s
	ikelifetime=150s
	rekeymargin=10s
	rekeyfuzz=50%"
    gw_conn v1a 24 "$s" v1g "	$GW_IKEV1
$life"
    gw_conn v1b 25 "$s" v1g "	$GW_IKEV1
$life"
    gw_conn pdel 26 "$s" pdel
    gw_conn lchild 27 "$s" lchild
    gw_conn ldel 28 "$s" ldel
    gw_conn coll 29 "$s" coll
    if [ "$s" = west ]; then
        printf '\nconn v2-deadpeer\n\tright=192.0.2.99\n\tleftid=@west-dead\n\trightid=@nobody-v2\n\tleftsubnet=10.1.30.0/24\n\trightsubnet=10.2.30.0/24\n'
    fi
}

write_configs() {
    init_side west
    init_side east
    gw_configs west > "$ST/west/ipsec.conf"
    gw_configs east > "$ST/east/ipsec.conf"
}

# ---------------------------------------------------------------- helpers
# The serial of side $1's state of connection $2 whose state name matches
# $3 (an extended regex); 4.x prints whack's lines after "000 ".
serial_of() {
    W "$1" --showstates 2>/dev/null | sed -E 's/^000 //' \
        | grep -E "^#[0-9]+: \"$2\"[^ ]* .*($3)" | sed -E -n 's/^#([0-9]+):.*/\1/p' | tail -1
}
child_up() { W west --trafficstatus 2>/dev/null | grep -q "\"$1\""; }
all_up() { local c; for c in "$@"; do child_up "$c" || return 1; done; }

audit_enabled() { [ -f "$LAB/audit.enabled" ]; }

eval "pair_start_pluto() $(declare -f start_pluto | tail -n +2)"
start_pluto() {
    local i
    if audit_enabled && [ ! -f "$ST/audit/pid" ]; then start_auditd; fi
    pair_start_pluto "$@"
    [ "$1" = west ] || return 0
    for i in $GW_DAEMONS; do
        [ -f "$ST/swantrail/$i/pid" ] || start_swantrail "$i"
    done
}

eval "pair_finish() $(declare -f finish | tail -n +2)"
finish() {
    local i
    sleep 5   # let the last polls see the final state
    for i in $GW_DAEMONS; do stop_swantrail "$i" TERM; done
    pair_finish
    if audit_enabled; then stop_auditd; fi
}

# Both ends rekey coll's Child SA at once; every packet waits 1.5 s on the
# link, so each end's request crosses the other's.
collide() {
    local w e
    "$LAB/uml/modprobe" sch_netem 2>/dev/null
    if ! ip netns exec west tc qdisc add dev vw root netem delay 1500ms \
        || ! ip netns exec east tc qdisc add dev ve root netem delay 1500ms; then
        log "WARNING: no netem: the collision may not happen"
    fi
    log "rekey collision: $GW_REKEY_CHILD --name coll on both ends at once"
    WA west "$GW_REKEY_CHILD" --name coll & w=$!
    WA east "$GW_REKEY_CHILD" --name coll & e=$!
    wait $w $e   # not a bare wait: the series runs in the background too
    sleep 6
    ip netns exec west tc qdisc del dev vw root 2>/dev/null
    ip netns exec east tc qdisc del dev ve root 2>/dev/null
    log "rekey collision done: $(grep -cE '"coll" #[0-9]+: .*(rekeyed|established) Child SA' "$ST/west/pluto.log") coll Child SA lines in west's log"
}

# ================================================================= main
: > "$TL"
log "scenario gateway start on $(uname -sr); libreswan $GW_VERSION; series ${SERIES_SECS}s"
[ "$GW_VERSION" = 4.10 ] || bind_root
setup_net
write_configs
start_pluto west
start_pluto east
capture 00-loaded west east

log "initiate v2-deadpeer (async), then every connection"
W west --name v2-deadpeer --initiate --asynchronous >> "$CAP/whack-actions.txt" 2>&1
# One IKE SA for sh1..sh3 and one ISAKMP SA for v1a and v1b: each next
# connection is brought up once the first one's SA is there.
WA west --name sh1 --initiate
WA west --name sh2 --initiate
WA west --name sh3 --initiate
WA west --name v1a --initiate
WA west --name v1b --initiate
# The rest six at a time: east's pluto in the guest takes a second or more
# per key exchange, and thirty at once end in retransmits and timeouts.
batch=""
for c in $GW_CONNS pdel lchild ldel coll; do
    W west --name "$c" --initiate --asynchronous >> "$CAP/whack-actions.txt" 2>&1
    batch="$batch $c"
    if [ "$(echo $batch | wc -w)" -ge 6 ]; then
        wait_for 60 all_up $batch || log "WARNING: not up within 60 s:$batch"
        batch=""
    fi
done
wait_for 90 all_up $GW_CONNS sh1 sh2 sh3 v1a v1b pdel lchild ldel coll \
    || log "WARNING: not every connection up: $(W west --trafficstatus | grep -c 'type=ESP') Child SAs"
capture 01-established west east

start_series
T0=$(date +%s)

sleep_until $((T0 + SERIES_SECS / 8))
n=$(serial_of east pdel 'ESTABLISHED_CHILD_SA')
log "east deletes pdel's Child SA (east #$n); west brings it back at once"
[ -n "$n" ] && WA east --deletestate "$n"
# 5.x brings it back by itself; 4.10 is told to.
wait_for 5 eval '! child_up pdel' && WA west --name pdel --initiate

sleep_until $((T0 + SERIES_SECS / 4))
n=$(serial_of west lchild 'ESTABLISHED_CHILD_SA')
log "west deletes its own Child SA of lchild (#$n) and brings it back at once"
[ -n "$n" ] && WA west --deletestate "$n"
WA west --name lchild --initiate

sleep_until $((T0 + SERIES_SECS * 3 / 8))
collide

sleep_until $((T0 + SERIES_SECS / 2))
log "forced rekey of the IKE SA sh1..sh3 share"
WA west --rekey-ike --name sh1
sleep 8
n=$(serial_of east sh1 'ESTABLISHED_IKE_SA|STATE_PARENT_R2')
log "east deletes the IKE SA sh1..sh3 share (east #$n)"
[ -n "$n" ] && WA east --deletestate "$n"

sleep_until $((T0 + SERIES_SECS * 5 / 8))
log "west deletes connection ldel"
WA west --delete --name ldel
sleep 10
log "west adds ldel back under the same name and brings it up"
ip netns exec west $GW_ADDCONN --ctlsocket "$ST/west/run/pluto.ctl" --config "$ST/west/ipsec.conf" ldel \
    >> "$CAP/whack-actions.txt" 2>&1
WA west --name ldel --initiate

sleep_until $((T0 + SERIES_SECS * 7 / 8))
log "terminate v1a and v1b"
WA west --name v1b --terminate
WA west --name v1a --terminate

sleep_until $((T0 + SERIES_SECS))
capture 02-before-peer-death west east
log "east's pluto SIGKILLed"
stop_pluto east KILL
wait_for 90 log_has west 'liveness' || log "WARNING: no liveness message on west within 90 s"
sleep 10
capture 03-peer-gone west
ip -n east xfrm state flush; ip -n east xfrm policy flush
start_pluto east
wait_for 90 all_up $GW_CONNS || log "WARNING: west did not bring every g connection back: $(W west --trafficstatus | grep -c 'type=ESP') Child SAs"
capture 04-peer-back west east

log "restart west's pluto with v2-deadpeer half-open"
stop_pluto west TERM
sleep 4
start_pluto west
for c in g01 g02; do WA west --name "$c" --initiate; done
sleep 10
capture 05-restarted west east

stop_series
finish
[ "$GW_VERSION" = 4.10 ] || unbind_root
