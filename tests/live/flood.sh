#!/usr/bin/env bash
# SYN flood through `nfrs run` with nf_conntrack_max lowered (root only; namespaces client --
# gw (nfrs run) -- server as in routed.sh). The table (max 128) holds 100 established, assured
# TCP connections and one that streams; then the client namespace sends spoofed SYNs (random
# sources in 10.0.1.0/24, random ports) to a server port whose kernel drops them, for 15 s
# (FLOOD_SECONDS) at up to FLOOD_RATE per second (5000), default buckets. Checks:
#  - the stream keeps its 1 KiB round trips going through the flood (no reset, none over 3 s),
#    and every held connection still carries data afterwards (assured entries are never
#    early-dropped);
#  - the flood fills the table, which never holds more than nf_conntrack_max entries (sampled
#    through the daemon); new flows meet a full table and are dropped;
#  - "table full, dropping packet" is logged, and no more often than net_ratelimit allows
#    (a burst of 10 per 5 s);
#  - the daemon's memory stays bounded: its RSS (/proc/PID/status) grows by at most 16 MiB
#    from before the flood, and not in the second half of the flood;
#  - then with nf_conntrack_buckets=16 (early drop finds the flood's unassured entries, as the
#    kernel did) a new connection gets through during a second flood of 8 s.
# Everything made (namespaces, processes) is removed on exit.
# Usage: tests/live/flood.sh [path/to/nfrs]   (default: builds it in $CARGO_TARGET_DIR)
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/live/lib.sh
t_start=$(date +%s)

live_root "live flood"
live_tools "live flood" ip ethtool python3 iptables-legacy
live_build "${1:-}"

seconds="${FLOOD_SECONDS:-15}"
rate="${FLOOD_RATE:-5000}"
max=128
held=100

live_names fl
store="$work/store"
daemon_pid=""
bg_pids=()

cleanup() {
  set +e
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
  for n in "$C" "$G" "$S"; do ip netns del "$n" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "live flood: FAIL: $*"
  echo "--- nfrs run log (last 20 lines):"
  tail -n 20 "$work/daemon.log" 2>/dev/null
  exit 1
}

live_topology
ip netns exec "$S" ip route add 10.0.1.0/24 via 198.51.100.2
# The flood's target port: the server's kernel drops the SYNs (no answer, the entries stay
# unreplied and unassured, as a flood to a silent host leaves them).
ip netns exec "$S" iptables-legacy -A INPUT -p tcp --dport 80 -j DROP

live_gw_toml >"$work/gw.toml"
printf '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A FORWARD -i lan0 -o wan0 -j ACCEPT\nCOMMIT\n' \
  | NFRS_NO_DAEMON=1 "$nfrs" iptables-restore --store "$store"

export NFRS_STORE="$store"
live_daemon "$store" "$work/gw.toml"
live_wait_ready
# Lowered at run time (in a host file it is machine-wide and needs `exclusive = true`).
"$nfrs" sysctl -qw "net.netfilter.nf_conntrack_max=$max" || fail "sysctl -w nf_conntrack_max"
[ "$("$nfrs" sysctl -n net.netfilter.nf_conntrack_max)" = "$max" ] || fail "nf_conntrack_max is not $max"

live_tcp_py "$work/tcp.py"
cat >>"$work/tcp.py" <<'PY'
elif mode == "new":
    # One new connection and a round trip, retried for up to 5 s.
    end = time.monotonic() + 5
    while True:
        try:
            c = socket.create_connection(("198.51.100.10", 9000), timeout=1)
            rtt(c, 10)
            print("new ok", flush=True)
            break
        except OSError as e:
            if time.monotonic() > end:
                raise SystemExit(f"no new connection: {e}")
PY

cat >"$work/flood.py" <<'PY'
# Spoofed SYNs (random sources in 10.0.1.0/24 but .1/.2, random ports) to 198.51.100.10:80
# over a raw socket, at up to RATE per second for SECONDS; prints what it sent.
import random, socket, struct, sys, time
rate, seconds = int(sys.argv[1]), float(sys.argv[2])
def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
dst = socket.inet_aton("198.51.100.10")
pkts = []
for i in range(20000):
    src = bytes([10, 0, 1, random.randrange(3, 255)])
    sport = random.randrange(1024, 65536)
    tcp = struct.pack("!HHIIBBHHH", sport, 80, random.getrandbits(32), 0, 5 << 4, 0x02, 64240, 0, 0)
    c = csum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xffff, 0, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    pkts.append(ip + tcp)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
start = time.monotonic()
sent = 0
while True:
    now = time.monotonic() - start
    if now >= seconds:
        break
    due = int(now * rate)
    while sent < due:
        try:
            s.sendto(pkts[sent % len(pkts)], ("198.51.100.10", 0))
        except OSError:
            pass
        sent += 1
    time.sleep(0.001)
el = time.monotonic() - start
print(f"sent {sent} {el:.2f} {sent / el:.0f}", flush=True)
PY

live_tcp_traffic "$held" "$held connections through nfrs"
assured=$("$nfrs" conntrack -L 2>/dev/null | grep -c "ASSURED" || true)
[ "$assured" -ge "$held" ] || fail "only $assured assured entries before the flood"
rx0=$(ip netns exec "$S" cat /sys/class/net/s0/statistics/rx_packets)
full0=$(grep -c "table full" "$work/daemon.log" || true)
rss0=$(live_rss)

# flood SECONDS: the flood in the background while the table size and the daemon's RSS are
# sampled every 0.5 s (maxcount, rss_max; rss_mid at half time); sets sent, flood_s, sent_rate.
maxcount=0
rss_max=0
flood() {
  ip netns exec "$C" python3 "$work/flood.py" "$rate" "$1" >"$work/flood.out" 2>&1 &
  local pid=$! t0 c r
  bg_pids+=($pid)
  rss_mid=0
  t0=$(date +%s%3N)
  while kill -0 "$pid" 2>/dev/null; do
    c=$("$nfrs" sysctl -n net.netfilter.nf_conntrack_count 2>/dev/null || echo 0)
    [ "$c" -gt "$maxcount" ] && maxcount=$c
    r=$(live_rss)
    [ "$r" -gt "$rss_max" ] && rss_max=$r
    if [ "$rss_mid" = 0 ] && [ $(($(date +%s%3N) - t0)) -ge $(($1 * 500)) ]; then rss_mid=$r; fi
    sleep 0.5
  done
  wait "$pid" || { cat "$work/flood.out"; fail "the flood generator failed"; }
  read -r _ sent flood_s sent_rate <"$work/flood.out"
}

# ---- phase 1: default buckets (262144): early drop looks at 8 buckets and practically never
# finds a victim (as measured in the kernel), so the table stays full and new flows are dropped.
flood "$seconds"
rss_end=$(live_rss)
rx=$(( $(ip netns exec "$S" cat /sys/class/net/s0/statistics/rx_packets) - rx0 ))
full=$(( $(grep -c "table full" "$work/daemon.log" || true) - full0 ))
flood_s_int=${flood_s%.*}
allowed=$(( 10 * (flood_s_int / 5 + 2) ))
[ "$maxcount" -le "$max" ] || fail "the table held $maxcount entries, over nf_conntrack_max $max"
[ "$maxcount" -ge $((max - 2)) ] || fail "the flood did not fill the table ($maxcount of $max)"
[ "$full" -ge 1 ] || fail "no table full message during the flood"
[ "$full" -le "$allowed" ] || fail "$full table full messages in ${flood_s} s: not rate-limited (at most $allowed)"
grow=$(( rss_max - rss0 ))
late=$(( rss_end - rss_mid ))
[ "$grow" -le 16384 ] || fail "the daemon's RSS grew by $grow KiB during the flood ($rss0 -> $rss_max KiB)"
[ "$late" -le 2048 ] || fail "the daemon's RSS still grew by $late KiB in the flood's second half ($rss_mid -> $rss_end KiB)"
grep -q "^streaming" "$work/stream.out" && ! grep -q "^done\|Error\|closed" "$work/stream.out" \
  || { cat "$work/stream.out"; fail "the TCP stream broke during the flood"; }
echo "live flood: $sent spoofed SYNs in ${flood_s} s (${sent_rate}/s offered; $rx packets reached the server)"
echo "live flood: table at most $maxcount/$max entries; $full 'table full' messages in ${flood_s} s (rate limit: at most $allowed)"
echo "live flood: daemon RSS $rss0 KiB before, at most $rss_max KiB during, $rss_end KiB at the end (+$grow KiB)"

# ---- phase 2: 16 buckets: early drop now finds the flood's unassured entries, so a new
# connection gets through while the flood goes on (the kernel did the same with 16 buckets).
"$nfrs" sysctl -qw net.netfilter.nf_conntrack_buckets=16 || fail "sysctl -w nf_conntrack_buckets=16"
ip netns exec "$C" python3 "$work/flood.py" "$rate" 8 >"$work/flood2.out" 2>&1 &
flood2_pid=$!
bg_pids+=($flood2_pid)
sleep 2
ip netns exec "$C" python3 "$work/tcp.py" new >"$work/new.out" 2>&1 \
  || { cat "$work/new.out"; fail "no new connection during the flood with early drop"; }
c=$("$nfrs" sysctl -n net.netfilter.nf_conntrack_count)
[ "$c" -le "$max" ] || fail "the table holds $c entries, over $max"
wait "$flood2_pid" || { cat "$work/flood2.out"; fail "the second flood failed"; }
echo "live flood: with 16 buckets early drop evicted unassured entries: a new connection got through during the flood"

touch "$work/stop"
wait "$stream_pid" || { cat "$work/stream.out"; fail "the TCP stream broke during the floods"; }
read -r _ rounds worst < <(grep '^done' "$work/stream.out")
touch "$work/go"
wait "$hold_pid" || { cat "$work/hold.out"; fail "a held connection broke during the floods"; }
grep -q '^ok' "$work/hold.out" || fail "held connections did not finish"
echo "live flood: stream $rounds round trips through both floods (slowest ${worst}s); all $held held connections carried data after them"
live_term
echo "live flood: ok ($(( $(date +%s) - t_start )) s)"
[ -n "${FLOOD_KEEP_LOG:-}" ] && cp "$work/daemon.log" "$FLOOD_KEEP_LOG"
true
