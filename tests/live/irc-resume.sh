#!/usr/bin/env bash
# Live IRC DCC RESUME through NAT (root only; issue 6 item 3, where the kernel cannot be the
# oracle). Namespaces: lan (two DCC senders, 10.0.1.2 "al" and 10.0.1.3 "bee") -- gw (nfrs run,
# MASQUERADE to 198.51.100.2, `-t raw -j CT --helper irc`) -- wan (an IRC relay on
# 198.51.100.10:6667 and a DCC receiver "recv" on 198.51.100.20). The programs are
# tests/live/irc/*.py (python3 stdlib only). FORWARD lets a new connection through only to the
# IRC port or when it is RELATED to an IRC connection.
#   1. al offers `DCC SEND a.bin <10.0.1.2> 5000`: the gateway announces it as
#      `<198.51.100.2> 5000` and expects 198.51.100.2:5000.
#   2. bee offers `DCC SEND b.bin <10.0.1.3> 5000`: 5000 is taken on 198.51.100.2, so the helper
#      moves it to a random port P (as the kernel's nf_nat_irc does).
#   3. recv asks `DCC RESUME b.bin P POS` (the port it was told); nfrs rewrites it to 5000 on the
#      way to bee (the kernel would pass P, which bee never offered, and the resume would fail);
#      bee answers `DCC ACCEPT b.bin 5000 POS`, which nfrs rewrites to P on the way out.
#   4. recv connects to 198.51.100.2:P: RELATED, sent on to 10.0.1.3:5000; it must receive
#      exactly bee's bytes POS.. (not al's), and a message bee sends afterwards must arrive
#      intact (sequence adjustment after three length-changing rewrites).
# The relay's log of every line in and out shows what each side wrote and what the other got.
# Usage: tests/live/irc-resume.sh [path/to/nfrs]   (default: builds it in $CARGO_TARGET_DIR)
set -euo pipefail
cd "$(dirname "$0")/../.."
progs="$PWD/tests/live/irc"
. tests/live/lib.sh
live_logs="daemon.log ircd.log al.out bee.out recv.out al.json bee.json recv.json"
live_init "live irc-resume" i "${1:-}"
command -v python3 >/dev/null || fail "python3 missing"
live_topology
# A second sender behind the NAT, a receiver beside the IRC relay.
ip netns exec "$C" ip addr add 10.0.1.3/24 dev c0
ip netns exec "$S" ip addr add 198.51.100.20/24 dev s0
live_start

wait_for() { # FILE PATTERN : up to 15 s
  for _ in $(seq 150); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "timed out waiting for '$2' in $(basename "$1")"
}

live_helper_firewall irc 6667
"$nfrs" iptables -t raw -A PREROUTING -i lan0 -p tcp --dport 6667 -j CT --helper irc \
  || fail "iptables -t raw CT --helper irc via the daemon"

live_bg ip netns exec "$S" python3 "$progs/ircd.py" 198.51.100.10 6667 "$work/ircd.log" >"$work/ircd.out" 2>&1
live_wait_tcp "$S" 198.51.100.10 6667

size=300000
pos=123457
live_bg ip netns exec "$S" timeout 40 python3 "$progs/dcc_recv.py" 198.51.100.20 198.51.100.10 recv bee "$pos" \
  "$work/recv.json" >"$work/recv.out" 2>&1
recv_pid=$!
wait_for "$work/recv.out" ready
live_bg ip netns exec "$C" timeout 40 python3 "$progs/dcc_send.py" 10.0.1.2 198.51.100.10 al nobody a.bin "$size" 5000 hold \
  "$work/al.json" >"$work/al.out" 2>&1
wait_for "$work/ircd.log" '"peer": "al", "line": "PRIVMSG nobody :\\u0001DCC SEND'
live_bg ip netns exec "$C" timeout 40 python3 "$progs/dcc_send.py" 10.0.1.3 198.51.100.10 bee recv b.bin "$size" 5000 resume \
  "$work/bee.json" >"$work/bee.out" 2>&1
bee_pid=$!
wait "$bee_pid" || fail "the resuming sender failed (see bee.json)"
wait "$recv_pid" || fail "the receiver failed"

# All checks on the JSON results and the relay's log, in one place.
python3 - "$work" "$size" "$pos" <<'PY' || fail "checks on the exchange"
import json, sys
work, size, pos = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
NAT = "3325256706"  # 198.51.100.2 as DCC writes it
log = [json.loads(l) for l in open(work + "/ircd.log")]
recv = json.load(open(work + "/recv.json"))
bee = json.load(open(work + "/bee.json"))
al = json.load(open(work + "/al.json"))

def said(peer, verb):
    """DCC words of the lines the relay got from `peer` (dir in) or sent to it (dir out)."""
    out = {}
    for e in log:
        if e["peer"] == peer and "\x01DCC %s " % verb in e["line"]:
            out.setdefault(e["dir"], []).append(e["line"].split("\x01DCC ", 1)[1].rstrip("\x01").split(" "))
    return out

def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        sys.exit(1)

a_send = said("al", "SEND")["in"][0]
check(a_send == ["SEND", "a.bin", NAT, "5000", str(size)],
      "al's offer reached the relay as the gateway's address, port 5000 kept: %s" % " ".join(a_send))
b_send = said("bee", "SEND")["in"][0]
told = int(b_send[3])
check(b_send[:3] == ["SEND", "b.bin", NAT] and told != 5000,
      "bee's offer of port 5000 reached the relay moved to port %d: %s" % (told, " ".join(b_send)))
check(recv["told_addr"] == "198.51.100.2" and recv["told_port"] == told,
      "recv was told 198.51.100.2:%d" % told)
r_out = said("recv", "RESUME")["in"][0]
check(r_out == ["RESUME", "b.bin", str(told), str(pos)], "recv sent RESUME naming port %d" % told)
r_relayed = said("bee", "RESUME")["out"][0]
check(r_relayed == r_out, "the relay passed it unchanged to bee")
check(bee["resume_words"] == ["b.bin", "5000", str(pos)],
      "bee got RESUME naming its own port 5000 (rewritten by nfrs): %s" % bee["resume_words"])
a_in = said("bee", "ACCEPT")["in"][0]
check(a_in == ["ACCEPT", "b.bin", str(told), str(pos)],
      "bee's ACCEPT (port 5000) reached the relay naming port %d" % told)
check(recv["accept_words"] == ["b.bin", str(told), str(pos)], "recv got ACCEPT naming port %d" % told)
check(recv["received"] == size - pos and recv["exact"],
      "recv received exactly bee's bytes %d..%d (%d bytes)" % (pos, size, recv["received"]))
check(len(bee["connections"]) == 1 and bee["connections"][0]["sent_from"] == pos,
      "bee served one connection from byte %d, coming from %s" % (pos, bee["connections"][0]["from"]))
# Kernel rule (nf_nat_follow_master): an expected connection's source is mapped to the address
# its master talks to, here the IRC relay.
check(bee["connections"][0]["from"] == "198.51.100.10",
      "the resumed connection reached bee from the relay's address, as NAT follows the master")
check(al["connections"] == [], "al's listener got no connection")
check(recv.get("closing") == "sent %d bytes from %d" % (size - pos, pos),
      "bee's message after the rewrites arrived intact: %r" % recv.get("closing"))
PY

ct="$("$nfrs" conntrack -L 2>/dev/null)"
echo "$ct" | grep -q "^tcp .* src=198.51.100.20 dst=198.51.100.2 sport=[0-9]* dport=[0-9]* src=10.0.1.3 dst=198.51.100.10 sport=5000 " \
  || { echo "$ct"; fail "conntrack -L: no resumed DCC connection sent on to 10.0.1.3:5000"; }
echo "live irc-resume: conntrack -L shows the resumed connection sent on to 10.0.1.3:5000"
rel="$("$nfrs" iptables -L FORWARD -v -n -x | awk '/helper match "irc"/ {print $1}')"
[ "${rel:-0}" -ge 1 ] || fail "the RELATED rule counted no packet"
echo "live irc-resume: RELATED rule counted $rel packet(s)"

live_stop
