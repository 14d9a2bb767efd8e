#!/usr/bin/env bash
# Live test of `nfrs run` in routed mode (root only): namespaces client -- gw -- server joined by
# veth pairs; nfrs owns the gw namespace's two interfaces (no kernel IP address, arp off, kernel
# forwarding off, so only nfrs answers). Checks: ping through it, HTTP through MASQUERADE, a
# FORWARD DROP added with `nfrs iptables` through the control socket blocks new connections,
# `nfrs conntrack -L` shows the flows, `nfrs check` answers without changing anything, metrics
# are served, `nfrs sysctl` reads and writes, SIGTERM stops it cleanly.
# Usage: tests/live/routed.sh [path/to/nfrs]   (default: builds it in $CARGO_TARGET_DIR)
# NFRS_PACKET_IO=packet runs it on AF_PACKET with the TPACKET_V3 ring, =recv with plain recv,
# =xdp on AF_XDP (and checks that forced AF_XDP fails clearly where it cannot be set up);
# unset, the daemon chooses (AF_XDP where the veths take it).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/live/lib.sh

live_root "live routed"
live_tools "live routed" ip ethtool curl ping python3
live_build "${1:-}"

live_names l
store="$work/store"
daemon_pid=""
http_pid=""
echo_pid=""
client_pid=""
ping_pid=""
lan_http_pid=""
events_pid=""
syslog_pid=""

cleanup() {
  set +e
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  for p in "$http_pid" "$echo_pid" "$client_pid" "$ping_pid" "$lan_http_pid" "$events_pid" "$syslog_pid"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  for n in "$C" "$G" "$S"; do ip netns del "$n" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "live routed: FAIL: $*"
  echo "--- nfrs run log:"
  cat "$work/daemon.log" 2>/dev/null
  echo "--- syslog:"
  cat "$work/syslog.txt" 2>/dev/null
  exit 1
}

# The server has no route back to 10.0.1.0/24: only MASQUERADE lets it answer.
live_topology
# Strict: a mid-stream packet of an unknown connection is INVALID, so only a restored entry
# carries the TCP connection across the restart below.
live_gw_toml '"net.netfilter.nf_conntrack_tcp_loose" = "0"' \
  "$(printf 'log = "syslog"\nlog_facility = "local0"\nlog_socket = "%s/devlog"' "$work")" >"$work/gw.toml"
# A stand-in for the syslog daemon: every datagram on $work/devlog becomes a line.
python3 - "$work/devlog" "$work/syslog.txt" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as f:
    while True:
        f.write(s.recv(65536) + b"\n")
PY
syslog_pid=$!
for _ in $(seq 50); do [ -S "$work/devlog" ] && break; sleep 0.1; done

export NFRS_STORE="$store"
live_daemon "$store" "$work/gw.toml" --metrics 127.0.0.1:9187
live_wait_socket "$store"
[ "$(stat -c %a "$store/control.sock")" = 600 ] || fail "control socket mode is not 0600"
case "${NFRS_PACKET_IO:-}" in
  recv) grep -q "lan0 .*AF_PACKET, recv per frame, sendmmsg" "$work/daemon.log" || fail "plain recv not chosen" ;;
  packet) grep -q "lan0 .*AF_PACKET, TPACKET_V3 receive ring" "$work/daemon.log" || fail "no TPACKET_V3 ring on lan0" ;;
  xdp)
    for d in lan0 wan0; do
      grep -q "$d .*AF_XDP (" "$work/daemon.log" || fail "AF_XDP not on $d"
      ip netns exec "$G" ip -d link show "$d" | grep -q "prog/xdp" || fail "no XDP program on $d"
    done
    # Forced AF_XDP where it cannot be set up (the queues are taken) is an error, not a
    # silent fall back to AF_PACKET.
    if ip netns exec "$G" "$nfrs" run --store "$work/store2" --host "$work/gw.toml" >"$work/forced.log" 2>&1; then
      fail "a second daemon with NFRS_PACKET_IO=xdp on busy queues started"
    fi
    grep -q "AF_XDP on \`lan0\` (xdp forced)" "$work/forced.log" || { cat "$work/forced.log"; fail "forced AF_XDP failure not named"; }
    echo "live routed: forced AF_XDP on busy queues refused: $(head -1 "$work/forced.log")"
    ;;
  *) grep -Eq "lan0 .*(AF_XDP \(|TPACKET_V3 receive ring.*AF_XDP unavailable: )" "$work/daemon.log" \
       || fail "auto chose neither AF_XDP nor AF_PACKET with a reason" ;;
esac
echo "live routed: $(grep -o 'lan0 .*' "$work/daemon.log" | head -1)"
grep -q "warning" "$work/daemon.log" && fail "warnings about the kernel interfaces"

# Rules through the control socket (the daemon must be the one answering).
"$nfrs" iptables -t nat -A POSTROUTING -o wan0 -j MASQUERADE || fail "iptables -A via daemon"
"$nfrs" iptables-save -t nat | grep -q -- "-A POSTROUTING -o wan0 -j MASQUERADE" \
  || fail "iptables-save does not show the rule"

ip netns exec "$C" ping -c 2 -W 2 198.51.100.10 >"$work/ping.txt" \
  || { cat "$work/ping.txt"; fail "ping client -> server through nfrs"; }
ip netns exec "$C" ping -c 1 -W 2 10.0.1.1 >/dev/null || fail "ping the gateway's own address"
echo "live routed: ping through nfrs ok"

# Garbage on the control socket gets an error reply; the daemon carries on.
reply="$(python3 - "$store/control.sock" <<'PY'
import socket, sys
for msg in (b"{not json\n", b'{"op":"reboot"}\n', b"x" * (17 << 20)):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    try:
        s.sendall(msg)
    except OSError:
        pass
    print(s.makefile().readline().strip())
PY
)"
[ "$(echo "$reply" | grep -c '"code":2')" = 3 ] || fail "control socket replies to garbage: $reply"
ip netns exec "$C" ping -c 1 -W 2 198.51.100.10 >/dev/null || fail "forwarding after garbage"
# LOG lines go to syslog (here local0) with the rule's level: info (6) gives <134>.
"$nfrs" iptables -I FORWARD -p icmp -j LOG --log-prefix "nfrs-live: " --log-level info || fail "iptables LOG rule"
ip netns exec "$C" ping -c 1 -W 2 198.51.100.10 >/dev/null || fail "ping with a LOG rule"
for _ in $(seq 20); do grep -q "nfrs-live: " "$work/syslog.txt" 2>/dev/null && break; sleep 0.1; done
grep -Eq "^<134>nfrs\[[0-9]+\]: nfrs-live: IN=lan0 OUT=wan0 .*SRC=10.0.1.2 DST=198.51.100.10 .*PROTO=ICMP TYPE=8 " "$work/syslog.txt" \
  || { cat "$work/syslog.txt"; fail "no LOG line for the ping in syslog"; }
"$nfrs" iptables -D FORWARD 1 || fail "iptables -D"
# A rule the language accepts but the engine cannot run yet: refused, store left as it was.
before_rules="$("$nfrs" iptables-save | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//')"
if out="$("$nfrs" iptables -t raw -A PREROUTING -j CT --zone-orig 1 2>&1)"; then
  fail "a rule the engine cannot run was accepted"
fi
echo "$out" | grep -q "not swapped in.*not yet supported by the engine" || fail "refusal said: $out"
[ "$("$nfrs" iptables-save | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//')" = "$before_rules" ] || fail "the store changed anyway"
echo "live routed: malformed and oversized control messages refused, forwarding goes on"

mkdir -p "$work/www" && echo "hello through nfrs" >"$work/www/index.html"
ip netns exec "$S" python3 -m http.server 8000 --bind 198.51.100.10 --directory "$work/www" \
  >/dev/null 2>&1 &
http_pid=$!
live_wait_tcp "$S" 198.51.100.10 8000
body="$(ip netns exec "$C" curl -s --max-time 5 http://198.51.100.10:8000/index.html)" \
  || fail "curl through MASQUERADE"
[ "$body" = "hello through nfrs" ] || fail "curl got '$body'"
echo "live routed: curl through MASQUERADE ok"

# DNAT: a port of the gateway's own wan address forwarded to a server in the client network
# (the server namespace resolves 198.51.100.2 through nfrs's ARP answer).
mkdir -p "$work/lanwww" && echo "hello from the lan" >"$work/lanwww/index.html"
ip netns exec "$C" python3 -m http.server 8001 --bind 10.0.1.2 --directory "$work/lanwww" \
  >/dev/null 2>&1 &
lan_http_pid=$!
"$nfrs" iptables -t nat -A PREROUTING -i wan0 -p tcp --dport 8080 -j DNAT --to-destination 10.0.1.2:8001 \
  || fail "iptables DNAT via daemon"
live_wait_tcp "$C" 10.0.1.2 8001
body="$(ip netns exec "$S" curl -s --max-time 5 http://198.51.100.2:8080/index.html)" \
  || fail "curl through DNAT"
[ "$body" = "hello from the lan" ] || fail "curl through DNAT got '$body'"
ip netns exec "$S" ip neigh show 198.51.100.2 | grep -q "lladdr $(ip netns exec "$G" cat /sys/class/net/wan0/address)" \
  || fail "the server did not learn wan0's MAC from nfrs's ARP reply"
echo "live routed: curl through DNAT ok"

ct="$("$nfrs" conntrack -L 2>"$work/ct.err")" || fail "conntrack -L"
echo "$ct" | grep -q "^tcp .*src=198.51.100.10 dst=198.51.100.2 sport=[0-9]* dport=8080 .*src=10.0.1.2 dst=198.51.100.10 sport=8001 " \
  || { echo "$ct"; fail "conntrack -L does not show the DNAT flow"; }
echo "$ct" | grep -q "^tcp .*dst=198.51.100.10 sport=[0-9]* dport=8000 .*src=198.51.100.10 dst=198.51.100.2 " \
  || { echo "$ct"; fail "conntrack -L does not show the masqueraded HTTP flow"; }
echo "$ct" | grep -q "^icmp .*dst=198.51.100.10 " || { echo "$ct"; fail "no icmp flow"; }
grep -q "flow entries have been shown" "$work/ct.err" || fail "conntrack summary line"
echo "live routed: conntrack -L shows the flows"

# nfrs check: what a new connection would meet now (NAT, rule path, a would-be entry), and
# nothing changes — the table (timeouts aside, in any order: the listing follows hash buckets) and
# the counters stay as they were.
strip_to() { sed -E 's/^([a-z]+ +[0-9]+) [0-9]+ /\1 /' | sort; }
# Wait for the last segments of the curl connections to settle (two equal listings).
ct_before="$("$nfrs" conntrack -L 2>/dev/null | strip_to)"
for _ in $(seq 20); do
  sleep 0.2
  again="$("$nfrs" conntrack -L 2>/dev/null | strip_to)"
  [ "$again" = "$ct_before" ] && break
  ct_before="$again"
done
save_before="$("$nfrs" iptables-save -c | grep -v '^#')"
chk="$("$nfrs" check lan0 tcp 10.0.1.2:45000 '>' 198.51.100.10:8000 flags=S)" || fail "nfrs check"
echo "$chk" | grep -q "^  out wan0 tcp 198.51.100.2:45000 > 198.51.100.10:8000 " || { echo "$chk"; fail "check: no masqueraded out line"; }
echo "$chk" | grep -q "accepted by nat/POSTROUTING rule 1" || { echo "$chk"; fail "check: rule path"; }
echo "$chk" | grep -qx "  verdict: forwarded out wan0, source NAT 10.0.1.2:45000 -> 198.51.100.2:45000" \
  || { echo "$chk"; fail "check: verdict"; }
echo "$chk" | grep -q "conntrack would hold: tcp      6 120 SYN_SENT src=10.0.1.2 dst=198.51.100.10 sport=45000 dport=8000 " \
  || { echo "$chk"; fail "check: would-be entry"; }
ct_after="$("$nfrs" conntrack -L 2>/dev/null | strip_to)"
[ "$ct_after" = "$ct_before" ] || { diff <(echo "$ct_before") <(echo "$ct_after"); fail "nfrs check changed the table"; }
[ "$("$nfrs" iptables-save -c | grep -v '^#')" = "$save_before" ] || fail "nfrs check changed the counters"
"$nfrs" proc net/nf_conntrack_expect >/dev/null || fail "proc net/nf_conntrack_expect"
echo "live routed: nfrs check answers and changes nothing"

# Metrics: Prometheus text on the gateway's loopback.
m="$(ip netns exec "$G" curl -s --max-time 3 http://127.0.0.1:9187/metrics)" || fail "metrics scrape"
echo "$m" | grep -Eq '^nfrs_rule_packets_total\{table="nat",chain="POSTROUTING",rule="1"\} [1-9]' \
  || { echo "$m"; fail "metrics: MASQUERADE rule counter"; }
echo "$m" | grep -Eq '^nfrs_interface_receive_packets_total\{interface="lan0"\} [1-9]' || fail "metrics: lan0 packets in"
echo "$m" | grep -Eq '^nfrs_interface_transmit_packets_total\{interface="wan0"\} [1-9]' || fail "metrics: wan0 packets out"
echo "$m" | grep -Eq '^nfrs_conntrack_entries [1-9]' || fail "metrics: conntrack entries"
echo "$m" | grep -q '^nfrs_conntrack_max 262144$' || fail "metrics: conntrack max"
[ "$(ip netns exec "$G" curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9187/nope)" = 404 ] || fail "metrics: 404"
echo "live routed: metrics served"

# conntrack -E: a new ping flow's events stream from the daemon, then a DESTROY for a
# deletion by `conntrack -D`; SIGINT ends the stream with conntrack-tools' summary line.
"$nfrs" conntrack -E >"$work/events.txt" 2>"$work/events.err" &
events_pid=$!
sleep 0.5
ip netns exec "$C" ping -c 1 -W 2 -p 6e667273 198.51.100.10 >/dev/null || fail "ping while listening to events"
"$nfrs" conntrack -D -p icmp >/dev/null 2>&1 || fail "conntrack -D -p icmp"
for _ in $(seq 30); do grep -q DESTROY "$work/events.txt" && break; sleep 0.1; done
kill -INT "$events_pid"; wait "$events_pid" || fail "conntrack -E exit code"
events_pid=""
grep -Eq '^    \[NEW\] icmp     1 30 src=10.0.1.2 dst=198.51.100.10 type=8 code=0 id=[0-9]+ \[UNREPLIED\] src=198.51.100.10 dst=198.51.100.2 type=0 code=0 id=[0-9]+$' "$work/events.txt" \
  || { cat "$work/events.txt"; fail "conntrack -E: no NEW icmp event"; }
grep -Eq '^ \[UPDATE\] icmp     1 30 src=10.0.1.2 dst=198.51.100.10 type=8 ' "$work/events.txt" || { cat "$work/events.txt"; fail "conntrack -E: no UPDATE"; }
grep -Eq '^\[DESTROY\] icmp     1 [0-9]+ src=10.0.1.2 .* \[USERSPACE\] portid=[0-9]+$' "$work/events.txt" || { cat "$work/events.txt"; fail "conntrack -E: no DESTROY"; }
grep -Eq '^conntrack v1.4.7 \(conntrack-tools\): [3-9][0-9]* flow events have been shown.$' "$work/events.err" || { cat "$work/events.err"; fail "conntrack -E summary"; }
echo "live routed: conntrack -E streams NEW, UPDATE and DESTROY"

# Multi-call: links named like the tools behave as them.
mkdir -p "$work/bin"
for t in conntrack sysctl iptables; do ln -s "$nfrs" "$work/bin/$t"; done
"$work/bin/conntrack" -L 2>/dev/null | grep -q "dport=8000" || fail "conntrack link"
[ "$("$work/bin/sysctl" -n net.ipv4.ip_forward)" = 1 ] || fail "sysctl link"
"$work/bin/iptables" -t nat -S POSTROUTING | grep -q MASQUERADE || fail "iptables link"
[ "$("$nfrs" sysctl -n net.ipv4.ip_forward)" = 1 ] || fail "sysctl ip_forward"
"$nfrs" sysctl -w net.netfilter.nf_conntrack_max=1000 | grep -qx "net.netfilter.nf_conntrack_max = 1000" \
  || fail "sysctl -w nf_conntrack_max"
grep -q "nf_conntrack_max = 1000" "$store/sysctl.conf" || fail "sysctl not kept in the store"

"$nfrs" proc net/nf_conntrack | grep -q "^ipv4     2 tcp      6 .*dport=8000 " || fail "proc net/nf_conntrack"

# Only root (or the control group) may manage the daemon; others are told so, not let through.
chmod 755 "$work"
if out="$(setpriv --reuid=65534 --regid=65534 --clear-groups "$nfrs" iptables --store "$store" -A FORWARD -j DROP 2>&1)"; then
  fail "a non-root user changed the rules"
fi
echo "$out" | grep -q "permission denied" || fail "non-root user got: $out"
"$nfrs" iptables -S FORWARD | grep -q -- "-A FORWARD -j DROP" && fail "the non-root rule landed"

# iptables-restore swaps the whole ruleset under steady traffic without breaking connections.
ip netns exec "$C" ping -i 0.05 -c 60 -W 1 198.51.100.10 >"$work/flood.txt" 2>&1 &
ping_pid=$!
for i in 1 2 3 4 5; do
  printf '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -o wan0 -j MASQUERADE\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -s 10.0.9.%s -j DROP\nCOMMIT\n' "$i" \
    | "$nfrs" iptables-restore || fail "iptables-restore via the daemon"
  sleep 0.4
done
wait "$ping_pid" || true
grep -q " 0% packet loss" "$work/flood.txt" || { cat "$work/flood.txt"; fail "packets lost while rulesets were swapped"; }
"$nfrs" iptables-save | grep -q -- "-A FORWARD -s 10.0.9.5/32 -j DROP" || fail "last restore not in force"
echo "live routed: 5 iptables-restore swaps under a 20/s ping, no packet lost"

"$nfrs" iptables -A FORWARD -p tcp --dport 8000 -j DROP || fail "iptables -A FORWARD DROP"
if ip netns exec "$C" curl -s --max-time 3 http://198.51.100.10:8000/index.html >/dev/null; then
  fail "curl still passes after the DROP rule"
fi
"$nfrs" iptables -L FORWARD -v -n -x | grep -q "DROP .*tcp dpt:8000" || fail "-L does not list the DROP"
pk="$("$nfrs" iptables -L FORWARD -v -n -x | awk '/DROP .*dpt:8000/ {print $1}')"
[ "${pk:-0}" -ge 1 ] || fail "the DROP rule counted no packet ($pk)"
echo "live routed: FORWARD DROP via the control socket blocks curl ($pk packets dropped)"
chk="$("$nfrs" check lan0 tcp 10.0.1.2:45001 '>' 198.51.100.10:8000 flags=S)" || fail "nfrs check (drop)"
echo "$chk" | grep -q "^  (dropped)$" || { echo "$chk"; fail "check: a dropped packet"; }
echo "$chk" | grep -Eqx "  verdict: dropped \(dropped by filter/FORWARD rule [0-9]+\)" || { echo "$chk"; fail "check: which rule drops"; }
ip netns exec "$C" ping -c 1 -W 2 198.51.100.10 >/dev/null || fail "ping after the DROP rule"

# Restart without loss: a TCP connection open across a daemon restart keeps working.
cat >"$work/echo.py" <<'PY'
import os, socket, sys, time
if sys.argv[1] == "server":
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("198.51.100.10", 9000))
    s.listen(4)
    while True:
        c, _ = s.accept()
        while True:
            d = c.recv(100)
            if not d:
                break
            c.sendall(d)
        c.close()
else:
    c = socket.create_connection(("198.51.100.10", 9000), timeout=5)
    c.sendall(b"one")
    assert c.recv(100) == b"one"
    print("first", flush=True)
    while not os.path.exists(sys.argv[2]):
        time.sleep(0.05)
    c.sendall(b"two")
    d = c.recv(100)
    assert d == b"two", d
    print("second", flush=True)
PY
ip netns exec "$S" python3 "$work/echo.py" server >/dev/null 2>&1 &
echo_pid=$!
live_wait_tcp "$S" 198.51.100.10 9000
ip netns exec "$C" python3 "$work/echo.py" client "$work/go" >"$work/echo.out" 2>&1 &
client_pid=$!
for _ in $(seq 50); do grep -q first "$work/echo.out" && break; sleep 0.1; done
grep -q first "$work/echo.out" || { cat "$work/echo.out"; fail "echo connection through nfrs"; }
live_term
grep -q "connections saved to the store" "$work/daemon.log" || fail "no conntrack snapshot on stop"
if [ "${NFRS_PACKET_IO:-}" = xdp ]; then
  grep -q "lan0: AF_XDP kernel counters: rx_dropped [0-9]" "$work/daemon.log" || fail "no AF_XDP counters at stop"
  echo "live routed: $(grep -o 'lan0: AF_XDP kernel counters.*' "$work/daemon.log" | head -1)"
fi
[ -s "$store/conntrack.state" ] || fail "conntrack.state missing"
live_daemon "$store" "$work/gw.toml"
live_wait_socket "$store"
grep -q "saved connections restored" "$work/daemon.log" || fail "no restore on start"
"$nfrs" conntrack -L 2>/dev/null | grep -q "dport=9000 .*ESTABLISHED\|ESTABLISHED .*dport=9000" \
  || { "$nfrs" conntrack -L; fail "restored connection not listed"; }
touch "$work/go"
wait "$client_pid" || { cat "$work/echo.out"; fail "the connection broke across the restart"; }
client_pid=""
echo "live routed: a TCP connection survived a daemon restart"

# nf_conntrack_max lowered at run time: with only an assured entry left (the echo connection,
# now TIME_WAIT) and room for one, a new flow finds the table full and is dropped.
"$nfrs" conntrack -D -p icmp >/dev/null 2>&1 || true
"$nfrs" conntrack -D -p tcp --dport 8000 >/dev/null 2>&1 || true
"$nfrs" conntrack -D -p tcp --dport 8080 >/dev/null 2>&1 || true
[ "$("$nfrs" conntrack -C)" = 1 ] || { "$nfrs" conntrack -L; fail "expected one entry left"; }
"$nfrs" sysctl -qw net.netfilter.nf_conntrack_max=1 || fail "sysctl -w nf_conntrack_max=1"
if ip netns exec "$C" ping -c 1 -W 1 198.51.100.10 >/dev/null; then
  fail "a new flow passed a full table"
fi
for _ in $(seq 20); do grep -q "table full" "$work/syslog.txt" && break; sleep 0.1; done
gw_netns="$(ip netns exec "$G" readlink /proc/self/ns/net | tr -dc 0-9)"
grep -Eq "^<132>nfrs\[[0-9]+\]: nf_conntrack: nf_conntrack: table full in netns $gw_netns, dropping packet$" "$work/syslog.txt" \
  || { cat "$work/syslog.txt"; fail "no table full message (warning) in syslog"; }
"$nfrs" sysctl -qw net.netfilter.nf_conntrack_max=1000 || fail "sysctl -w nf_conntrack_max=1000"
ip netns exec "$C" ping -c 1 -W 2 198.51.100.10 >/dev/null || fail "ping after raising nf_conntrack_max"
echo "live routed: nf_conntrack_max lowered at run time: table full, dropping packet"

live_term
[ -e "$store/control.sock" ] && fail "control socket left behind"
grep -q -- "-A FORWARD -p tcp -m tcp --dport 8000 -j DROP" "$store/ruleset.rules" || fail "rule not in the store"
# With no daemon the commands act on the store again.
"$nfrs" iptables-save | grep -q -- "--dport 8000 -j DROP" || fail "store after stop"
echo "live routed: ok"
