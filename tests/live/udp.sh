#!/usr/bin/env bash
# Live UDP through `nfrs run` with socat (issue 5 item 9), root only: client -- gw (nfrs, with
# the TUN device `[live] tap = "nfrs0"`) -- server namespaces. Each exchange is one request
# datagram and one reply from a `socat UDP4-RECVFROM:...,fork` that answers with the address it
# saw the request come from ($SOCAT_PEERADDR); the asking socat's socket is connected, so it
# only takes a reply from the address and port it asked. Checks:
#   - MASQUERADE: client -> server:7000; the server sees the gateway's 198.51.100.2, the reply
#     comes back to the client, `conntrack -L` shows the masqueraded entry;
#   - DNAT: server -> 198.51.100.2:5300 reaches the client's 10.0.1.2:7001, which sees the
#     server's own address; the reply reaches the server from 198.51.100.2:5300; the entry is
#     in `conntrack -L`;
#   - a UDP service of the gateway itself (socat on 10.0.1.1:7002, through the TUN), directly
#     and through DNAT to the local address (203.0.113.9:53 -> 10.0.1.1:7003), with its entry;
#   - an INPUT DROP of port 7002 silences the local service (and counts); the LOG rule before it
#     reaches a journald stand-in (`log = "journald"`, `log_socket`) as a native-protocol
#     datagram: MESSAGE= the kernel's line, PRIORITY=6 (--log-level info),
#     SYSLOG_FACILITY=0, SYSLOG_IDENTIFIER=nfrs.
# Usage: tests/live/udp.sh [path/to/nfrs]   (default: builds it in $CARGO_TARGET_DIR)
# Needs the Debian package socat.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/live/lib.sh
live_logs="daemon.log socat.log journal.txt"
live_init "live udp" u "${1:-}"
for t in ip ethtool socat; do
  command -v "$t" >/dev/null || fail "$t missing (apt-get install -y socat)"
done
live_topology
live_gw_toml "" "$(printf 'tap = "nfrs0"\nlog = "journald"\nlog_socket = "%s/journal"' "$work")" >"$work/gw.toml"
# A stand-in for journald: each datagram on $work/journal, then a line "--".
python3 - "$work/journal" "$work/journal.txt" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as f:
    while True:
        f.write(s.recv(65536) + b"--\n")
PY
live_pids+=($!)
for _ in $(seq 50); do [ -S "$work/journal" ] && break; sleep 0.1; done
live_daemon "$store" "$work/gw.toml"
live_wait_socket "$store"
live_wait_ready

"$nfrs" iptables-restore <<'RULES' || fail "iptables-restore via the daemon"
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i wan0 -d 198.51.100.2 -p udp --dport 5300 -j DNAT --to-destination 10.0.1.2:7001
-A PREROUTING -i lan0 -d 203.0.113.9 -p udp --dport 53 -j DNAT --to-destination 10.0.1.1:7003
-A POSTROUTING -o wan0 -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
RULES

# An answering socat in namespace $1 on $2:$3 (one request per service: a forked child keeps
# reading the shared socket until it has been idle for -T seconds). The answer reads the
# request first: an answer gone before socat hands it the request makes socat fail (EPIPE).
answer() {
  live_bg ip netns exec "$1" socat -T 5 "UDP4-RECVFROM:$3,bind=$2,reuseaddr,fork" \
    SYSTEM:'read -r line; echo "peer $SOCAT_PEERADDR"' 2>>"$work/socat.log"
}
# One request from namespace $1 to $2:$3; prints the reply (empty when none came in 2 s).
ask() {
  echo request | ip netns exec "$1" timeout 5 socat -T 2 - "UDP4:$2:$3" 2>>"$work/socat.log" || true
}
answer "$S" 198.51.100.10 7000
answer "$C" 10.0.1.2 7001
answer "$G" 10.0.1.1 7002
answer "$G" 10.0.1.1 7003
for _ in $(seq 50); do
  n=$(for ns in "$S" "$C" "$G"; do ip netns exec "$ns" ss -lun; done | grep -c ":700[0-3] " || true)
  [ "$n" = 4 ] && break
  sleep 0.1
done

got=$(ask "$C" 198.51.100.10 7000)
[ "$got" = "peer 198.51.100.2" ] || fail "MASQUERADE: client -> server:7000 got '$got'"
ct=$("$nfrs" conntrack -L -p udp 2>/dev/null)
grep -q "src=10.0.1.2 dst=198.51.100.10 sport=[0-9]* dport=7000 src=198.51.100.10 dst=198.51.100.2 sport=7000" <<<"$ct" \
  || fail "no masqueraded entry in conntrack -L: $ct"

got=$(ask "$S" 198.51.100.2 5300)
[ "$got" = "peer 198.51.100.10" ] || fail "DNAT: server -> 198.51.100.2:5300 got '$got'"
ct=$("$nfrs" conntrack -L -p udp 2>/dev/null)
grep -q "src=198.51.100.10 dst=198.51.100.2 sport=[0-9]* dport=5300 src=10.0.1.2 dst=198.51.100.10 sport=7001" <<<"$ct" \
  || fail "no DNAT entry in conntrack -L: $ct"

got=$(ask "$C" 10.0.1.1 7002)
[ "$got" = "peer 10.0.1.2" ] || fail "the gateway's own UDP service through the TUN got '$got'"
got=$(ask "$C" 203.0.113.9 53)
[ "$got" = "peer 10.0.1.2" ] || fail "DNAT to the gateway's own UDP service got '$got'"
ct=$("$nfrs" conntrack -L -p udp 2>/dev/null)
grep -q "src=10.0.1.2 dst=203.0.113.9 sport=[0-9]* dport=53 src=10.0.1.1 dst=10.0.1.2 sport=7003" <<<"$ct" \
  || fail "no DNAT-to-local entry in conntrack -L: $ct"

"$nfrs" iptables -A INPUT -p udp --dport 7002 -j LOG --log-prefix "udp-drop: " --log-level info \
  || fail "adding the LOG rule"
"$nfrs" iptables -A INPUT -p udp --dport 7002 -j DROP || fail "adding the INPUT DROP"
got=$(ask "$C" 10.0.1.1 7002)
[ -z "$got" ] || fail "INPUT DROP did not silence the local UDP service: '$got'"
"$nfrs" iptables -L INPUT -v -n -x | awk '/dpt:7002/ {exit !($1 >= 1)}' \
  || fail "the INPUT DROP did not count: $("$nfrs" iptables -L INPUT -v -n -x)"

for _ in $(seq 50); do grep -qs "udp-drop" "$work/journal.txt" && break; sleep 0.1; done
python3 - "$work/journal.txt" <<'PY' || fail "journald datagram"
import re, sys
recs = open(sys.argv[1], "rb").read().split(b"--\n")
rec = next(r for r in recs if b"udp-drop" in r)
want = re.compile(rb"MESSAGE=udp-drop: IN=lan0 OUT= MAC=[0-9a-f:]+ SRC=10\.0\.1\.2 DST=10\.0\.1\.1 .*PROTO=UDP SPT=\d+ DPT=7002 LEN=16\n"
                  rb"PRIORITY=6\nSYSLOG_FACILITY=0\nSYSLOG_IDENTIFIER=nfrs\n$")
if not want.fullmatch(rec):
    sys.exit("unexpected datagram: %r" % rec)
PY
grep -q "log lines to journald $work/journal (facility 0)" "$work/daemon.log" || fail "the startup report does not name journald"
live_stop
