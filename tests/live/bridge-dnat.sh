#!/usr/bin/env bash
# Live test of DNAT and MAC ageing in `nfrs run`'s bridge mode (root only). Three hosts on one
# /24, A (10.0.0.2), B (10.0.0.3) and X (10.0.0.4), each on a veth whose other end (p1, p2, p3)
# sits in the gw namespace, where nfrs bridges p1..p3 as br0 (10.0.0.1/24, ageing_time 2 s,
# ip_forward=1 from the host file). Checks:
# - DNAT to another host on the bridge: with `-t nat -A PREROUTING -i br0 -p tcp --dport 8080
#   -j DNAT --to-destination 10.0.0.3:80`, curl from A to X:8080 (where nothing listens) gets
#   B's page, B's server sees A's address, `nfrs conntrack -L` shows the DNAT entry; with
#   `nfrs sysctl -w net.ipv4.ip_forward=0` it does not pass;
# - MAC ageing: a UDP datagram from A to B (static neighbours, B silent, a sink on B) is not
#   seen on X while B's MAC is fresh, is flooded to X once B has been silent > 2 s, and is not
#   seen on X again once a frame from B has taught its port anew;
# then the same in a kernel bridge (br_netfilter, iptables-legacy, ageing_time 200 cs) in the
# same namespaces. Everything it started goes on exit.
# Usage: tests/live/bridge-dnat.sh [path/to/nfrs]   (default: builds it in $CARGO_TARGET_DIR)
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/live/lib.sh
live_logs="daemon.log tcpdump.txt tcpdump.err sink.txt http.txt"
live_init "live bridge-dnat" d "${1:-}"
live_tools "$live_name" ip ethtool curl python3 tcpdump
X="${C%-c}-x"
bd_cleanup() {
  set +e
  for p in $(ip netns pids "$X" 2>/dev/null); do kill "$p" 2>/dev/null; done
  ip netns del "$X" 2>/dev/null
  live_cleanup
}
trap bd_cleanup EXIT

# $C is host A, $S is host B, $X is host X, $G holds the bridge.
live_namespaces
ip netns add "$X"
ip netns exec "$X" ip link set lo up
ip netns exec "$X" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
live_veth "$C" a0 p1
live_veth "$S" b0 p2
live_veth "$X" x0 p3
ip netns exec "$G" sysctl -qw net.ipv4.ip_forward=0
ip netns exec "$C" ip addr add 10.0.0.2/24 dev a0
ip netns exec "$S" ip addr add 10.0.0.3/24 dev b0
ip netns exec "$X" ip addr add 10.0.0.4/24 dev x0
amac="$(ip netns exec "$C" cat /sys/class/net/a0/address)"
bmac="$(ip netns exec "$S" cat /sys/class/net/b0/address)"
# A and B never ARP for each other, so B stays silent unless asked to speak.
ip netns exec "$C" ip neigh replace 10.0.0.3 lladdr "$bmac" dev a0 nud permanent
ip netns exec "$S" ip neigh replace 10.0.0.2 lladdr "$amac" dev b0 nud permanent

cat >"$work/br.toml" <<'TOML'
[[interface]]
name = "p1"

[[interface]]
name = "p2"

[[interface]]
name = "p3"

[[bridge]]
name = "br0"
ports = ["p1", "p2", "p3"]
address = "10.0.0.1/24"
ageing_time = 2

[sysctl]
"net.ipv4.ip_forward" = "1"

[live]
mode = "bridge"
TOML
live_daemon "$store" "$work/br.toml"
live_wait_socket "$store"
live_wait_ready
grep -q "bridge br0 .*ports p1, p2, p3 (promiscuous)" "$work/daemon.log" || fail "no bridge in the startup report"
[ "$("$nfrs" sysctl -n net.ipv4.ip_forward)" = 1 ] || fail "ip_forward is not 1"

# B serves its page on port 80; X listens on nothing, A sends no DNAT of its own.
mkdir -p "$work/www"
echo "hello from B" >"$work/www/index.html"
live_bg ip netns exec "$S" python3 -u -m http.server 80 --bind 10.0.0.3 --directory "$work/www" >"$work/http.txt" 2>&1
live_wait_tcp "$S" 10.0.0.3 80
# The sink on B: it takes A's datagrams so that B answers nothing (no port unreachable).
live_bg ip netns exec "$S" python3 -u -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.0.0.3", 9999))
print("sink up", flush=True)
while True:
    print("got %d" % len(s.recv(100)), flush=True)
' >"$work/sink.txt" 2>&1
for _ in $(seq 100); do grep -qs "sink up" "$work/sink.txt" && break; sleep 0.05; done
grep -qs "sink up" "$work/sink.txt" || fail "the UDP sink on B did not start"

# (1) DNAT of a bridged TCP connection to another host on the same bridge.
"$nfrs" iptables -t nat -A PREROUTING -i br0 -p tcp --dport 8080 -j DNAT --to-destination 10.0.0.3:80 \
  || fail "iptables -t nat -A PREROUTING DNAT"
body="$(ip netns exec "$C" curl -s -m 5 http://10.0.0.4:8080/index.html)" || fail "curl A -> X:8080 (DNAT to B:80)"
[ "$body" = "hello from B" ] || fail "curl A -> X:8080: got '$body', not B's page"
grep -q '^10\.0\.0\.2 - - .*"GET /index.html' "$work/http.txt" || fail "B's server did not see A's address"
"$nfrs" conntrack -L -p tcp 2>/dev/null >"$work/ct.txt" || true
grep -q "src=10.0.0.2 dst=10.0.0.4 sport=[0-9]* dport=8080 .*src=10.0.0.3 dst=10.0.0.2 sport=80 " "$work/ct.txt" \
  || { cat "$work/ct.txt"; fail "conntrack -L does not show the DNAT entry"; }
n="$("$nfrs" iptables-save -t nat -c | sed -n 's/^\[\([0-9]*\):[0-9]*\] -A PREROUTING -i br0 -p tcp .*-j DNAT.*/\1/p')"
[ "$n" = 1 ] || fail "the DNAT rule counted '$n' packets, not 1 (the SYN)"
echo "live bridge-dnat: curl A -> X:8080 gets B's page through DNAT, B sees 10.0.0.2, tracked"
# ip_forward=0: the DNATed SYN is dropped (as by the kernel bridge below), and passes again at 1.
"$nfrs" sysctl -w net.ipv4.ip_forward=0 >/dev/null || fail "sysctl -w ip_forward=0"
if ip netns exec "$C" curl -s -m 2 http://10.0.0.4:8080/index.html >/dev/null; then
  fail "curl A -> X:8080 DNATed to B with ip_forward=0"
fi
"$nfrs" sysctl -w net.ipv4.ip_forward=1 >/dev/null || fail "sysctl -w ip_forward=1"
body="$(ip netns exec "$C" curl -s -m 5 http://10.0.0.4:8080/index.html)" || fail "curl A -> X:8080 with ip_forward=1 again"
[ "$body" = "hello from B" ] || fail "curl A -> X:8080 with ip_forward=1 again: got '$body'"
echo "live bridge-dnat: with ip_forward=0 the DNATed connection does not pass"

# (2) MAC ageing. tcpdump on X (started once, for nfrs and the kernel bridge alike) shows
# datagrams for B's MAC only when they are flooded.
ip netns exec "$X" tcpdump -l -n -i x0 "ether dst $bmac and udp dst port 9999" \
  >"$work/tcpdump.txt" 2>"$work/tcpdump.err" &
live_pids+=($!)
for _ in $(seq 200); do grep -qs "listening on" "$work/tcpdump.err" && break; sleep 0.05; done
grep -qs "listening on" "$work/tcpdump.err" || fail "tcpdump on X did not start"
to_a() { ip netns exec "$S" bash -c 'echo b >/dev/udp/10.0.0.2/9998'; }
to_b() { ip netns exec "$C" bash -c "printf %${1}s >/dev/udp/10.0.0.3/9999"; }
ageing_check() { # $1: what runs the bridge (for messages); A's datagrams are $2+1..$2+3 bytes
  local k="$2" sent
  sent=$(grep -c "^got" "$work/sink.txt" || true)
  # B speaks (learned on p2); A's first datagram then goes to p2 only.
  to_a
  sleep 0.3
  to_b $((k + 1))
  sleep 3.7
  # B has been silent for 4 s: its entry is gone, A's second datagram floods (p2 and p3).
  to_b $((k + 2))
  sleep 0.3
  # B speaks again: learned anew, A's third datagram goes to p2 only.
  to_a
  sleep 0.3
  to_b $((k + 3))
  for _ in $(seq 40); do
    [ "$(grep -c "^got" "$work/sink.txt" || true)" -ge $((sent + 3)) ] && break
    sleep 0.05
  done
  sleep 0.3
  [ "$(grep -c "^got" "$work/sink.txt" || true)" = $((sent + 3)) ] \
    || fail "$1: B's sink did not get A's 3 datagrams"
  tail -n 3 "$work/sink.txt" | tr '\n' ' ' | grep -q "^got $((k + 1)) got $((k + 2)) got $((k + 3)) $" \
    || fail "$1: B's sink got $(tail -n 3 "$work/sink.txt" | tr '\n' ' ')"
  grep -q "UDP, length $((k + 1))$" "$work/tcpdump.txt" && fail "$1: flooded to X while B's MAC was fresh"
  grep -q "UDP, length $((k + 2))$" "$work/tcpdump.txt" || fail "$1: not flooded to X after B's MAC aged out"
  grep -q "UDP, length $((k + 3))$" "$work/tcpdump.txt" && fail "$1: flooded to X after B's MAC was learned anew"
  return 0
}
ageing_check "nfrs" 0
echo "live bridge-dnat: B's MAC ages out after 2 s silent (A's datagram floods to X), then is learned anew"
live_term

# The same with a kernel bridge in $G: br_netfilter, the DNAT in iptables-legacy, ip_forward=1,
# ageing_time 2 s (200 centiseconds).
if ip netns exec "$G" ip link add br0 type bridge ageing_time 200 2>/dev/null && [ -e /proc/sys/net/bridge ]; then
  for p in p1 p2 p3; do ip netns exec "$G" ip link set "$p" master br0; done
  ip netns exec "$G" ip addr add 10.0.0.1/24 dev br0
  ip netns exec "$G" ip link set br0 up
  ip netns exec "$G" sysctl -qw net.ipv4.ip_forward=1
  ip netns exec "$G" sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
  ip netns exec "$G" iptables-legacy -t nat -A PREROUTING -i br0 -p tcp --dport 8080 -j DNAT --to-destination 10.0.0.3:80
  body="$(ip netns exec "$C" curl -s -m 5 http://10.0.0.4:8080/index.html)" || fail "kernel: curl A -> X:8080"
  [ "$body" = "hello from B" ] || fail "kernel: curl A -> X:8080: got '$body', not B's page"
  ip netns exec "$G" sysctl -qw net.ipv4.ip_forward=0
  if ip netns exec "$C" curl -s -m 2 http://10.0.0.4:8080/index.html >/dev/null; then
    fail "kernel: curl A -> X:8080 DNATed to B with ip_forward=0"
  fi
  ageing_check "kernel" 3
  echo "live bridge-dnat: a kernel bridge does the same (DNAT to B, not with ip_forward=0, ageing after 2 s)"
else
  echo "live bridge-dnat: no kernel bridge here, not compared"
fi
echo "$live_name: ok ($(($(date +%s) - live_started)) s)"
