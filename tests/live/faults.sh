#!/usr/bin/env bash
# Fault injection for the store and the daemon (root only; network namespaces like routed.sh:
# client -- gw (nfrs run) -- server). Checks:
#  1. kill -9 of an offline `nfrs iptables-restore` at random moments while it replaces a
#     5000-rule ruleset: the store always loads and equals the old or the new ruleset;
#  2. a ruleset swap (10 restores of 5000-rule rulesets through the daemon) under steady
#     traffic breaks no established connection: a TCP stream keeps its round trips going,
#     a 20/s ping loses nothing;
#  3. a restarted daemon restores every saved connection: `conntrack -L` before and after a
#     restart are the same (timeouts aside), and the held TCP connections still carry data;
#  4. kill -9 of the daemon at random moments while it applies a restore: the store always
#     loads and equals the old or the new ruleset, and a new daemon starts on it;
#  4b. kill -9 of the daemon with `[live] ct_save_interval = 1`: held TCP connections go on
#     through the restarted daemon (the periodic snapshot restored them); with 0 (off) they
#     break, so it is the snapshot that carries them; a second kill -9 right after the restart
#     loses nothing either (the restored snapshot stays until the first round replaces it);
#  5. a full disk (a small tmpfs holds the store) and a read-only store (tmpfs remounted ro):
#     a change gets a clear error and a non-zero exit, and nothing changes (the ruleset, the
#     store's files), offline and through the daemon, which keeps forwarding.
# Everything made (namespaces, mounts, processes) is removed on exit.
# Usage: tests/live/faults.sh [path/to/nfrs]   (default: builds it in $CARGO_TARGET_DIR)
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/live/lib.sh
t_start=$(date +%s)

live_root "live faults"
live_tools "live faults" ip ethtool ping python3 mount
live_build "${1:-}"

live_names f
dmnt="$work/dmnt"   # the daemon's store: a tmpfs (filled and made read-only in step 5)
fmnt="$work/fmnt"   # a small tmpfs for the offline full-disk check
dstore="$dmnt/store"
daemon_pid=""
bg_pids=()

cleanup() {
  set +e
  [ -n "$daemon_pid" ] && kill -9 "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
  # Tools the daemon started and that outlived it.
  for p in $(pgrep -f -- "--store $dstore" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  for n in "$C" "$G" "$S"; do ip netns del "$n" 2>/dev/null; done
  for m in "$dmnt" "$fmnt"; do mountpoint -q "$m" && umount -l "$m"; done
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "live faults: FAIL: $*"
  echo "--- nfrs run log (last 30 lines):"
  tail -n 30 "$work/daemon.log" 2>/dev/null
  exit 1
}

# Rulesets as the store shows them: no comments, no counters.
norm() { grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//g'; }
# $2 random delays in [0, $1) ms, as seconds for sleep (made ahead: no interpreter start
# between a start and its kill).
delays() { python3 -c "import random; [print(random.randrange(max(1, $1)) / 1000) for _ in range($2)]"; }
ms_now() { date +%s%3N; }

# Two big rulesets of one table (iptables-restore commits table by table; one table makes
# "old or new" the whole truth): conntrack on, 5000 DROP rules for sources that never send.
mkrules() {
  python3 - "$1" "$2" <<'PY'
import sys
base, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n")
    f.write("-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n")
    for i in range(5000):
        f.write(f"-A FORWARD -s 10.{base}.{i // 250}.{i % 250 + 1}/32 -p tcp -m tcp --dport {1000 + i} -j DROP\n")
    f.write("-A FORWARD -i lan0 -o wan0 -j ACCEPT\n")
    f.write("-A FORWARD -i wan0 -o lan0 -p icmp -j ACCEPT\n")
    f.write("COMMIT\n")
PY
}
mkrules 101 "$work/old.rules"
mkrules 102 "$work/new.rules"
NFRS_NO_DAEMON=1 "$nfrs" iptables-restore --store "$work/ref-old" <"$work/old.rules"
NFRS_NO_DAEMON=1 "$nfrs" iptables-restore --store "$work/ref-new" <"$work/new.rules"
ref_old="$(NFRS_NO_DAEMON=1 "$nfrs" iptables-save --store "$work/ref-old" | norm)"
ref_new="$(NFRS_NO_DAEMON=1 "$nfrs" iptables-save --store "$work/ref-new" | norm)"
[ "$ref_old" != "$ref_new" ] || fail "the two rulesets are the same"
[ "$(echo "$ref_old" | grep -c -- '-j DROP')" = 5000 ] || fail "old ruleset has not 5000 DROP rules"

# Which ruleset a store holds: old, new, or FAIL (does not load / something else).
which_rules() {
  local out
  out="$(NFRS_NO_DAEMON=1 "$nfrs" iptables-save --store "$1" 2>&1)" || { echo "FAIL: $out" | head -3; return; }
  out="$(echo "$out" | norm)"
  if [ "$out" = "$ref_old" ]; then echo old
  elif [ "$out" = "$ref_new" ]; then echo new
  else echo "FAIL: neither ruleset ($(echo "$out" | wc -l) lines)"; fi
}

# ---- 1. kill -9 of an offline iptables-restore ----------------------------------------------
off="$work/off"
NFRS_NO_DAEMON=1 "$nfrs" iptables-restore --store "$off" <"$work/old.rules"
t0=$(ms_now)
for _ in 1 2 3; do
  NFRS_NO_DAEMON=1 "$nfrs" iptables-restore --store "$off" <"$work/new.rules"
  NFRS_NO_DAEMON=1 "$nfrs" iptables-restore --store "$off" <"$work/old.rules"
done
dur=$(( ($(ms_now) - t0) / 6 + 1 ))
cur=old
declare -A seen=([old]=0 [new]=0)
killed=0
mapfile -t wait_s < <(delays $((dur * 3 / 2)) 40)
for i in $(seq 40); do
  if [ "$cur" = old ]; then next=new; else next=old; fi
  NFRS_NO_DAEMON=1 "$nfrs" iptables-restore --store "$off" <"$work/$next.rules" 2>/dev/null &
  p=$!
  sleep "${wait_s[$((i - 1))]}"
  kill -9 "$p" 2>/dev/null || true
  rc=0
  wait "$p" 2>/dev/null || rc=$?
  [ "$rc" = 137 ] && killed=$((killed + 1))
  got="$(which_rules "$off")"
  case "$got" in
    old | new) ;;
    *) fail "offline restore killed (round $i, from $cur to $next): store $got" ;;
  esac
  seen[$got]=$((seen[$got] + 1))
  cur="$got"
done
[ "${seen[old]}" -gt 0 ] && [ "${seen[new]}" -gt 0 ] || fail "kills never landed on both sides (old ${seen[old]}, new ${seen[new]})"
[ "$killed" -ge 5 ] || fail "only $killed of 40 restores were killed while running"
left=$(find "$off" -name '.*.tmp.*' | wc -l)
echo "live faults: 40 offline iptables-restore runs (~${dur} ms each) killed -9 at random moments ($killed mid-run): store always loaded, old ${seen[old]} / new ${seen[new]} times, never anything else ($left temp files of killed writers left beside it)"

# ---- the network -------------------------------------------------------------------------------
live_topology
ip netns exec "$S" ip route add 10.0.1.0/24 via 198.51.100.2

mkdir -p "$dmnt" "$fmnt"
mount -t tmpfs -o size=16m "nfrs-faults-$$" "$dmnt"
# Strict: a mid-stream packet of an unknown connection is INVALID (and dropped by the
# ruleset), so only a restored entry carries a TCP connection across a restart.
live_gw_toml '"net.netfilter.nf_conntrack_tcp_loose" = "0"' >"$work/gw.toml"

start_daemon() {
  live_daemon "$dstore" "$work/gw.toml"
  live_wait_ready
}
stop_daemon() { live_term; }
export NFRS_STORE="$dstore"

NFRS_NO_DAEMON=1 "$nfrs" iptables-restore --store "$dstore" <"$work/old.rules"
start_daemon
ip netns exec "$C" ping -c 1 -W 2 198.51.100.10 >/dev/null || fail "ping through nfrs"

live_tcp_py "$work/tcp.py"
# ---- 2. ruleset swaps under steady traffic ---------------------------------------------------
live_tcp_traffic 5 "held connections through nfrs"
ip netns exec "$C" ping -i 0.05 -c 80 -W 1 198.51.100.10 >"$work/ping.txt" 2>&1 &
ping_pid=$!
bg_pids+=($ping_pid)
t0=$(ms_now)
for i in $(seq 10); do
  if [ $((i % 2)) = 1 ]; then r=new; else r=old; fi
  "$nfrs" iptables-restore <"$work/$r.rules" || fail "iptables-restore $i through the daemon"
done
swap_ms=$(( ($(ms_now) - t0) / 10 ))
wait "$ping_pid" || true
touch "$work/stop"
wait "$stream_pid" || { cat "$work/stream.out"; fail "the TCP stream broke during the swaps"; }
grep -q " 0% packet loss" "$work/ping.txt" || { cat "$work/ping.txt"; fail "pings lost during the swaps"; }
read -r _ rounds worst < <(grep '^done' "$work/stream.out")
[ "$rounds" -ge 50 ] || fail "the stream made only $rounds round trips"
[ "$(which_rules "$dstore")" = old ] || fail "the last restore is not what the store holds"
echo "live faults: 10 swaps of 5000-rule rulesets (~${swap_ms} ms each) under traffic: TCP stream $rounds round trips (slowest ${worst}s), 80 pings at 20/s, nothing lost"

# ---- 3. restart: every saved connection comes back ---------------------------------------------
for port in 7001 7002 7003; do
  ip netns exec "$C" timeout 1 python3 -c "
import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('10.0.1.2', $port))
s.sendto(b'x', ('198.51.100.10', 9999))"
done
# Timeouts tick; everything else of an entry must come back as it was.
ctlist() { "$nfrs" conntrack -L 2>/dev/null | awk '{$3=""; print}' | sort; }
before="$(ctlist)"
n_before=$(echo "$before" | grep -c .)
[ "$n_before" -ge 9 ] || { echo "$before"; fail "expected >= 9 connections before the restart, got $n_before"; }
echo "$before" | grep -q "ESTABLISHED .*dport=9000" || { echo "$before"; fail "no established TCP entry"; }
stop_daemon
grep -q "$n_before connections saved to the store" "$work/daemon.log" \
  || { tail -5 "$work/daemon.log"; fail "the stop did not save $n_before connections"; }
start_daemon
grep -q "$n_before saved connections restored" "$work/daemon.log" \
  || { tail -5 "$work/daemon.log"; fail "the restart did not restore $n_before connections"; }
after="$(ctlist)"
[ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after"); fail "conntrack -L differs after the restart"; }
touch "$work/go"
wait "$hold_pid" || { cat "$work/hold.out"; fail "a held TCP connection broke across the restart"; }
grep -q '^ok' "$work/hold.out" || fail "held connections did not finish"
echo "live faults: restart restored all $n_before connections (conntrack -L equal but for timeouts); 5 held TCP connections carried data after it"

# ---- 4. kill -9 of the daemon while it applies a restore -------------------------------------
t0=$(ms_now)
"$nfrs" iptables-restore <"$work/new.rules" || fail "timing restore"
"$nfrs" iptables-restore <"$work/old.rules" || fail "timing restore"
ddur=$(( ($(ms_now) - t0) / 2 + 1 ))
cur=old
declare -A dseen=([old]=0 [new]=0)
mapfile -t wait_s < <(delays $((ddur * 3 / 2)) 8)
for i in $(seq 8); do
  if [ "$cur" = old ]; then next=new; else next=old; fi
  "$nfrs" iptables-restore <"$work/$next.rules" >/dev/null 2>&1 &
  cp=$!
  sleep "${wait_s[$((i - 1))]}"
  kill -9 "$daemon_pid"
  wait "$daemon_pid" 2>/dev/null || true
  daemon_pid=""
  wait "$cp" 2>/dev/null || true
  # A tool the daemon had started may outlive it: let it finish before looking.
  for _ in $(seq 200); do pgrep -f -- "restore --store $dstore" >/dev/null || break; sleep 0.05; done
  got="$(which_rules "$dstore")"
  case "$got" in
    old | new) ;;
    *) fail "daemon killed (round $i, from $cur to $next): store $got" ;;
  esac
  dseen[$got]=$((dseen[$got] + 1))
  cur="$got"
  start_daemon
done
ip netns exec "$C" ping -c 1 -W 2 198.51.100.10 >/dev/null || fail "ping after the kills"
echo "live faults: daemon killed -9 at random moments during 8 restores (~${ddur} ms each): store always loaded, old ${dseen[old]} / new ${dseen[new]} times; a new daemon started on it every time"

# ---- 4b. kill -9 keeps the connections of the last periodic snapshot ------------------------
live_gw_toml '"net.netfilter.nf_conntrack_tcp_loose" = "0"' 'ct_save_interval = 1' >"$work/gw1.toml"
live_gw_toml '"net.netfilter.nf_conntrack_tcp_loose" = "0"' 'ct_save_interval = 0' >"$work/gw0.toml"
# $1: the host file; $2: a tag for the files. Holds 3 connections, waits 2.5 s (> 1 s), kills
# the daemon with -9, starts it again, then a round trip on each; prints the hold tool's result.
kill9_round() {
  stop_daemon
  rm -f "$dstore/conntrack.state"   # only a periodic snapshot may bring connections back
  live_daemon "$dstore" "$1"
  live_wait_ready
  ip netns exec "$C" python3 "$work/tcp.py" hold 3 "$work/go-$2" >"$work/hold-$2.out" 2>&1 &
  local hp=$!
  bg_pids+=($hp)
  for _ in $(seq 200); do grep -qs ready "$work/hold-$2.out" && break; sleep 0.05; done
  grep -qs ready "$work/hold-$2.out" || { cat "$work/hold-$2.out"; fail "kill -9 ($2): connections not up"; }
  sleep 2.5
  kill -9 "$daemon_pid"
  wait "$daemon_pid" 2>/dev/null || true
  daemon_pid=""
  live_daemon "$dstore" "$1"
  live_wait_ready
  touch "$work/go-$2"
  wait "$hp" 2>/dev/null || true
}
t0=$(ms_now)
kill9_round "$work/gw1.toml" on
grep -q '^ok' "$work/hold-on.out" \
  || { cat "$work/hold-on.out"; fail "kill -9 with ct_save_interval = 1: held connections broke"; }
n_rest=$(grep -o '[0-9]* saved connections restored' "$work/daemon.log" | tail -1 | cut -d' ' -f1)
[ "${n_rest:-0}" -ge 3 ] || fail "kill -9 with ct_save_interval = 1: restored ${n_rest:-no} connections, want >= 3"
# A second kill -9 at once (most likely before the new daemon's first round): the snapshot it
# restored is still the store's, so nothing is lost.
n_lines=$(grep -c 'saved connections restored' "$work/daemon.log")
kill -9 "$daemon_pid"
wait "$daemon_pid" 2>/dev/null || true
live_daemon "$dstore" "$work/gw1.toml"
live_wait_ready
[ "$(grep -c 'saved connections restored' "$work/daemon.log")" -gt "$n_lines" ] \
  || fail "a second kill -9 right after a restart: nothing restored (the snapshot was gone)"
n_rest2=$(grep -o '[0-9]* saved connections restored' "$work/daemon.log" | tail -1 | cut -d' ' -f1)
[ "${n_rest2:-0}" -ge 3 ] || fail "a second kill -9 right after a restart: restored ${n_rest2:-no} connections, want >= 3"
on_ms=$(( $(ms_now) - t0 ))
kill9_round "$work/gw0.toml" off
grep -q '^ok' "$work/hold-off.out" \
  && fail "kill -9 with ct_save_interval = 0: held connections survived (the check proves nothing)"
echo "live faults: kill -9 with ct_save_interval = 1: $n_rest connections restored from the periodic snapshot, 3 held TCP connections carried data after it (${on_ms} ms), $n_rest2 again after a second kill -9 at once; with 0 they broke"
# Step 5 compares the store's files: no periodic snapshot may write among them.
stop_daemon
live_daemon "$dstore" "$work/gw0.toml"
live_wait_ready

# ---- 5. full disk and read-only store --------------------------------------------------------
# The store's files (names and contents) and the rules, to compare.
store_state() { (cd "$1" && for f in $(ls -A | grep -v '^control.sock$' | sort); do echo "== $f"; cat "$f"; done) | sha1sum; }

# Offline, on a small tmpfs filled to the last byte.
mount -t tmpfs -o size=1m "nfrs-faults-full-$$" "$fmnt"
printf '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.9.9.9/32 -j DROP\nCOMMIT\n' \
  | NFRS_NO_DAEMON=1 "$nfrs" iptables-restore --store "$fmnt/s"
dd if=/dev/zero of="$fmnt/filler" bs=4k >/dev/null 2>&1 || true
st="$(store_state "$fmnt/s")"
if out="$(NFRS_NO_DAEMON=1 "$nfrs" iptables --store "$fmnt/s" -A INPUT -j DROP 2>&1)"; then
  fail "iptables -A on a full disk succeeded"
fi
echo "$out" | grep -q "No space left on device" || fail "full disk: unclear error: $out"
if out="$(NFRS_NO_DAEMON=1 "$nfrs" iptables-restore --store "$fmnt/s" <"$work/old.rules" 2>&1)"; then
  fail "iptables-restore on a full disk succeeded"
fi
echo "$out" | grep -q "No space left on device" || fail "full disk: unclear restore error: $out"
[ "$(store_state "$fmnt/s")" = "$st" ] \
  || { ls -la "$fmnt/s"; fail "full disk: the store changed (files left behind?)"; }
rm -f "$fmnt/filler"
mount -o remount,ro "$fmnt"
for cmd in "iptables -A INPUT -j DROP" "iptables -F" "iptables-restore"; do
  if out="$(NFRS_NO_DAEMON=1 "$nfrs" $cmd --store "$fmnt/s" <"$work/old.rules" 2>&1)"; then
    fail "read-only store: $cmd succeeded"
  fi
  echo "$out" | grep -q "Read-only file system" || fail "read-only store: $cmd: unclear error: $out"
done
[ "$(store_state "$fmnt/s")" = "$st" ] || fail "read-only store changed"
echo "live faults: offline, full disk and read-only store: every change refused with a clear error, exit non-zero, store unchanged"

# Through the daemon: its store's tmpfs filled, then made read-only.
before_rules="$(which_rules "$dstore")"
dd if=/dev/zero of="$dmnt/filler" bs=4k >/dev/null 2>&1 || true
st="$(store_state "$dstore")"
if out="$("$nfrs" iptables -A FORWARD -s 10.9.9.9 -j DROP 2>&1)"; then
  fail "daemon: iptables -A on a full disk succeeded"
fi
echo "$out" | grep -q "No space left on device" || fail "daemon, full disk: unclear error: $out"
if out="$("$nfrs" iptables-restore <"$work/new.rules" 2>&1)"; then
  fail "daemon: iptables-restore on a full disk succeeded"
fi
echo "$out" | grep -q "No space left on device" || fail "daemon, full disk: unclear restore error: $out"
[ "$(store_state "$dstore")" = "$st" ] || { ls -la "$dstore"; fail "daemon, full disk: the store changed"; }
ip netns exec "$C" ping -c 1 -W 2 198.51.100.10 >/dev/null || fail "daemon stopped forwarding on a full disk"
rm -f "$dmnt/filler"
mount -o remount,ro "$dmnt"
if out="$("$nfrs" iptables -A FORWARD -s 10.9.9.9 -j DROP 2>&1)"; then
  fail "daemon: iptables -A on a read-only store succeeded"
fi
echo "$out" | grep -q "Read-only file system" || fail "daemon, read-only store: unclear error: $out"
[ "$(store_state "$dstore")" = "$st" ] || fail "daemon, read-only store: the store changed"
ip netns exec "$C" ping -c 1 -W 2 198.51.100.10 >/dev/null || fail "daemon stopped forwarding on a read-only store"
mount -o remount,rw "$dmnt"
[ "$(which_rules "$dstore")" = "$before_rules" ] || fail "the ruleset changed"
# The daemon still applies changes once the store is writable again.
"$nfrs" iptables -A FORWARD -s 10.9.9.9 -j DROP || fail "iptables -A after the store is writable again"
"$nfrs" iptables -S FORWARD | grep -q -- "-s 10.9.9.9/32 -j DROP" || fail "the rule is not in force"
echo "live faults: through the daemon, full disk and read-only store: changes refused with a clear error, store unchanged, forwarding went on"

stop_daemon
echo "live faults: ok ($(( $(date +%s) - t_start )) s)"
