#!/usr/bin/env bash
# Live test of the TUN path of `nfrs run` (`[live] tap = "nfrs0"`, issue 5 items 4 and 9), root
# only: client -- gw (nfrs) -- server namespaces; the gateway's own processes sit behind nfrs's
# rules through the TUN device. Checks:
#   - the kernel got nfrs's addresses on nfrs0, and rp_filter=1 on lan0/wan0 while nfrs runs;
#   - a ping to the gateway is answered by the gateway's kernel (none while its
#     icmp_echo_ignore_all is 1: the engine's modelled answers are off); the replies cross
#     OUTPUT, counted by a rule there;
#   - a TCP service of the gateway (python http.server on 10.0.1.1:8080) is reachable from the
#     client; one on :8081 is not while `-A INPUT -p tcp --dport 8081 -j DROP` is in (the
#     drop counted), and is once the rule is deleted; the client cannot reach it around nfrs
#     (the kernel also sees lan0's frames);
#   - DNAT to a local address: 203.0.113.7:8888 from the client reaches 10.0.1.1:8080, and
#     198.51.100.2:8888 from 203.0.113.50 behind the server too (the answer follows the host
#     file's [[route]], which the kernel got as a route by nfrs0 from 198.51.100.2);
#   - a real squid (Debian package) as transparent proxy behind
#     `-t nat -A PREROUTING -i lan0 -p tcp --dport 80 -j REDIRECT --to-ports 3128`: curl from
#     the client to http://198.51.100.10/ gets the server's page, squid's access.log shows the
#     request, and the server saw the connection come from the gateway (198.51.100.2), not the
#     client. There squid runs in accelerator mode (`http_port 3128 accel vhost allow-direct`:
#     the destination from the Host header);
#   - the same squid in intercept mode (`http_port 3129 intercept`) behind `--dport 8000 -j
#     REDIRECT --to-ports 3129`: squid asks the gateway kernel for the original destination
#     (SO_ORIGINAL_DST), which answers from the entry nfrs put in the kernel's conntrack table
#     before the SYN entered the TUN (`[live] tap_original_dst`, default on): curl to
#     http://198.51.100.10:8000/ gets the server's page, access.log shows the request to
#     198.51.100.10:8000; the entry is gone within 5 s of the connection's end (nfrs deletes it
#     once its own connection is in TIME_WAIT), a connection held open keeps its entry and
#     loses it within 5 s of closing, one open when the daemon stops loses it at the stop; the
#     kernel's table holds no entry of the plain local connections (the kernel itself tracks
#     nothing there); with `tap_original_dst = false`
#     (daemon restarted) squid cannot find the destination and the fetch fails; with a kernel
#     rule using conntrack in the gateway namespace the daemon's start probe turns the entries
#     off (with a warning) and squid's accelerator port still works;
#   - on exit the daemon removes nfrs0 and puts rp_filter back.
# Usage: tests/live/squid.sh [path/to/nfrs]   (default: builds it in $CARGO_TARGET_DIR)
# Needs the Debian package squid (and curl, python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/live/lib.sh
live_logs="daemon.log squid/cache.log squid/access.log www.log local.log"
live_init "live squid" q "${1:-}"
for t in ip ethtool curl ping python3 squid conntrack; do
  command -v "$t" >/dev/null || fail "$t missing (apt-get install -y squid curl python3 conntrack)"
done
live_topology
# A route beside the connected ones: 203.0.113.0/24 lies behind the server.
live_gw_toml "$(printf '\n[[route]]\nto = "203.0.113.0/24"\nvia = "198.51.100.10"\ndev = "wan0"')" \
  'tap = "nfrs0"' >"$work/gw.toml"
ip netns exec "$S" ip addr add 203.0.113.50/32 dev s0
live_daemon "$store" "$work/gw.toml"
live_wait_socket "$store"
live_wait_ready

# The kernel side of the TUN: nfrs's addresses, its connected routes, strict rp_filter.
addrs=$(ip netns exec "$G" ip -4 -o addr show dev nfrs0) || fail "no device nfrs0"
for a in 10.0.1.1/24 198.51.100.2/24; do
  grep -q "inet $a " <<<"$addrs" || fail "nfrs0 lacks $a: $addrs"
done
ip netns exec "$G" ip route get 10.0.1.2 | grep -q "dev nfrs0 src 10.0.1.1" || fail "no route to the LAN by nfrs0"
ip netns exec "$G" ip route get 203.0.113.50 | grep -q "dev nfrs0 src 198.51.100.2" \
  || fail "the host file's route is not the kernel's: $(ip netns exec "$G" ip route)"
for d in lan0 wan0; do
  [ "$(ip netns exec "$G" cat /proc/sys/net/ipv4/conf/$d/rp_filter)" = 1 ] || fail "rp_filter on $d is not 1"
done
grep -q "TUN nfrs0 (ifindex" "$work/daemon.log" || fail "no TUN line in the startup report"
grep -q "TUN nfrs0: REDIRECT/DNAT to local processes entered in the kernel's conntrack table" "$work/daemon.log" \
  || fail "SO_ORIGINAL_DST entries not on (the kernel tracks in this namespace?)"

"$nfrs" iptables-restore <<'RULES' || fail "iptables-restore via the daemon"
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i lan0 -p tcp --dport 80 -j REDIRECT --to-ports 3128
-A PREROUTING -i lan0 -p tcp --dport 8000 -j REDIRECT --to-ports 3129
-A PREROUTING -i lan0 -d 203.0.113.7 -p tcp --dport 8888 -j DNAT --to-destination 10.0.1.1:8080
-A PREROUTING -i wan0 -d 198.51.100.2 -p tcp --dport 8888 -j DNAT --to-destination 10.0.1.1:8080
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp --dport 8081 -j DROP
-A OUTPUT -p icmp --icmp-type echo-reply
COMMIT
RULES

# Ping: the gateway's kernel answers through the TUN (not the engine's model: with the
# kernel told to ignore echo requests there is no answer); the reply crosses nfrs's OUTPUT.
ip netns exec "$C" ping -c 2 -W 2 10.0.1.1 >/dev/null || fail "ping to the gateway through the TUN"
ip netns exec "$G" sysctl -qw net.ipv4.icmp_echo_ignore_all=1
if ip netns exec "$C" ping -c 1 -W 1 10.0.1.1 >/dev/null; then
  fail "a ping was answered while the gateway's kernel ignores them (the model answered?)"
fi
ip netns exec "$G" sysctl -qw net.ipv4.icmp_echo_ignore_all=0
"$nfrs" iptables -L OUTPUT -v -n -x | awk '/icmptype 0/ {exit !($1 >= 2)}' \
  || fail "echo replies did not cross OUTPUT: $("$nfrs" iptables -L OUTPUT -v -n -x)"

# Local TCP services on the gateway's LAN address.
mkdir -p "$work/www" "$work/local"
chmod 755 "$work" "$work/www" "$work/local"
echo "served by the server namespace" >"$work/www/index.html"
echo "served by the gateway itself" >"$work/local/index.html"
live_bg ip netns exec "$G" python3 -m http.server 8080 --bind 10.0.1.1 --directory "$work/local" 2>>"$work/local.log"
live_bg ip netns exec "$G" python3 -m http.server 8081 --bind 10.0.1.1 --directory "$work/local" 2>>"$work/local.log"
live_bg ip netns exec "$S" python3 -m http.server 80 --bind 198.51.100.10 --directory "$work/www" 2>>"$work/www.log"
live_bg ip netns exec "$S" python3 -m http.server 8000 --bind 198.51.100.10 --directory "$work/www" 2>>"$work/www.log"
live_wait_tcp "$S" 198.51.100.10 80
live_wait_tcp "$S" 198.51.100.10 8000
for _ in $(seq 50); do
  ip netns exec "$G" ss -ltn | grep -q "10.0.1.1:8081" && break
  sleep 0.1
done
got=$(ip netns exec "$C" curl -s -m 5 http://10.0.1.1:8080/) || fail "curl to the gateway's local service"
[ "$got" = "served by the gateway itself" ] || fail "local service answered: $got"
if ip netns exec "$C" curl -s -m 2 http://10.0.1.1:8081/ >/dev/null; then
  fail "INPUT DROP on 8081 did not stop the local service (delivered around nfrs?)"
fi
"$nfrs" iptables -L INPUT -v -n -x | awk '/dpt:8081/ {exit !($1 >= 1)}' \
  || fail "the INPUT DROP did not count: $("$nfrs" iptables -L INPUT -v -n -x)"
"$nfrs" iptables -D INPUT -p tcp --dport 8081 -j DROP || fail "deleting the DROP"
got=$(ip netns exec "$C" curl -s -m 5 http://10.0.1.1:8081/) || fail "8081 still blocked after -D"
[ "$got" = "served by the gateway itself" ] || fail "8081 answered: $got"

# DNAT to a local address.
got=$(ip netns exec "$C" curl -s -m 5 http://203.0.113.7:8888/) || fail "curl through DNAT to the local service"
[ "$got" = "served by the gateway itself" ] || fail "DNAT to local answered: $got"
"$nfrs" conntrack -L -p tcp --dport 8888 2>/dev/null | grep -q "src=10.0.1.1 dst=10.0.1.2 sport=8080" \
  || fail "no DNAT-to-local entry in conntrack -L: $("$nfrs" conntrack -L 2>&1)"

# From beyond the server (203.0.113.50, by the host file's route): DNAT to the local service,
# whose answer the kernel routes into the TUN and nfrs on by that route.
got=$(ip netns exec "$S" curl -s -m 5 --interface 203.0.113.50 http://198.51.100.2:8888/) \
  || fail "curl from 203.0.113.50 through DNAT to the local service"
[ "$got" = "served by the gateway itself" ] || fail "DNAT from 203.0.113.50 answered: $got"
grep -q "^203.0.113.50 .*GET / " "$work/local.log" || fail "the local service did not see 203.0.113.50"

# squid in the gateway namespace, its own config and directories, killed on exit.
sq="$work/squid"
mkdir -p "$sq"
chmod 777 "$sq"
cat >"$sq/squid.conf" <<CONF
http_port 3128 accel vhost allow-direct
http_port 3129 intercept
http_access allow all
cache deny all
pid_filename $sq/squid.pid
access_log stdio:$sq/access.log
cache_log $sq/cache.log
cache_store_log none
coredump_dir $sq
pinger_enable off
visible_hostname nfrs-gw
shutdown_lifetime 0 seconds
CONF
live_bg ip netns exec "$G" squid -N -f "$sq/squid.conf"
squid_pid=$!
for _ in $(seq 100); do
  ip netns exec "$G" ss -ltn | grep -q ":3128 " && break
  kill -0 "$squid_pid" 2>/dev/null || fail "squid exited at start"
  sleep 0.1
done
ip netns exec "$G" ss -ltn | grep -q ":3128 " || fail "squid does not listen on 3128"
got=$(ip netns exec "$C" curl -s -m 10 http://198.51.100.10/) || fail "curl through REDIRECT to squid"
[ "$got" = "served by the server namespace" ] || fail "through squid: $got"
for _ in $(seq 50); do grep -qs "198.51.100.10" "$sq/access.log" && break; sleep 0.1; done
grep -q "GET http://198.51.100.10/" "$sq/access.log" || fail "squid's access.log lacks the request"
awk '$3 == "10.0.1.2"' "$sq/access.log" | grep -q . || fail "squid did not see the client 10.0.1.2"
grep -q "^198.51.100.2 .*GET / " "$work/www.log" || fail "the server did not see the gateway's address"
if grep -q "^10.0.1.2 " "$work/www.log"; then fail "the server saw the client directly"; fi
"$nfrs" conntrack -L -p tcp --dport 80 2>/dev/null | grep -q "src=10.0.1.1 dst=10.0.1.2 sport=3128" \
  || fail "no REDIRECT entry in conntrack -L: $("$nfrs" conntrack -L 2>&1)"

# squid intercept: the original destination from the gateway kernel's conntrack table.
got=$(ip netns exec "$C" curl -s -m 10 http://198.51.100.10:8000/) || fail "curl through REDIRECT to squid intercept"
[ "$got" = "served by the server namespace" ] || fail "through squid intercept: $got"
for _ in $(seq 50); do grep -qs "198.51.100.10:8000" "$sq/access.log" && break; sleep 0.1; done
grep -q "GET http://198.51.100.10:8000/ - ORIGINAL_DST/198.51.100.10 " "$sq/access.log" \
  || fail "squid's access.log lacks the intercepted request to its original destination"
kct() { ip netns exec "$G" conntrack -L -p tcp 2>/dev/null; }
# gone PATTERN: waits (5 s) until no kernel entry matches the extended regex PATTERN.
gone() {
  for _ in $(seq 50); do grep -Eq "$1" <<<"$(kct)" || return 0; sleep 0.1; done
  return 1
}
# The finished connection's entry goes with it (nfrs deletes it once its own connection is in
# TIME_WAIT; the kernel alone would keep it 120 s).
gone "dport=8000 " || fail "the finished intercepted connection's kernel entry is still there 5 s later: $(kct)"
# hold_conn FILE: a connection from the client to 198.51.100.10:8000 held open, its port
# written to FILE; $! is its pid.
hold_conn() {
  live_bg ip netns exec "$C" python3 -c 'import socket, time
s = socket.create_connection(("198.51.100.10", 8000))
print(s.getsockname()[1], flush=True)
time.sleep(60)' >"$1"
  for _ in $(seq 50); do [ -s "$1" ] && break; sleep 0.1; done
  [ -s "$1" ] || fail "the held connection to squid intercept did not open"
}
hold_conn "$work/hold1"
hold1=$! p1=$(cat "$work/hold1")
kct | grep -q "src=10.0.1.2 dst=198.51.100.10 sport=$p1 dport=8000 .*src=10.0.1.1 dst=10.0.1.2 sport=3129 dport=$p1 " \
  || fail "no SO_ORIGINAL_DST entry for the held connection (port $p1) in the gateway kernel's table: $(kct)"
if kct | grep -Eq "dport=(8080|8081) .*src=10.0.1.1 dst=10.0.1.2 sport=808"; then
  fail "the kernel holds entries of plain local connections (it tracks the TUN itself?): $(kct)"
fi
sleep 2
kct | grep -q "sport=$p1 dport=8000 " || fail "the held connection's kernel entry went while it is open: $(kct)"
kill "$hold1"
gone "sport=$p1 dport=8000 " || fail "the closed connection's kernel entry is still there 5 s later: $(kct)"
# One still open when the daemon stops: its entry goes with the daemon.
hold_conn "$work/hold2"
hold2=$! p2=$(cat "$work/hold2")
kct | grep -q "sport=$p2 dport=8000 " || fail "no kernel entry for the second held connection: $(kct)"

live_term
kct | grep -q "dport=8000 " && fail "kernel entries left after the daemon stopped: $(kct)"
kill "$hold2"
grep -Eq "TUN nfrs0: [1-9][0-9]* packets handed to the kernel, [1-9][0-9]* sent by it" "$work/daemon.log" \
  || fail "no TUN packet counts at stop"
grep -Eq "TUN nfrs0: [1-9][0-9]* kernel conntrack entries for SO_ORIGINAL_DST, 0 refused \(last errno 0\), [1-9][0-9]* deleted as their connection ended" "$work/daemon.log" \
  || fail "no SO_ORIGINAL_DST entry counts at stop"

# Without the kernel entries squid intercept cannot learn the destination (the limit before).
live_gw_toml "$(printf '\n[[route]]\nto = "203.0.113.0/24"\nvia = "198.51.100.10"\ndev = "wan0"')" \
  "$(printf 'tap = "nfrs0"\ntap_original_dst = false')" >"$work/gw.toml"
ip netns exec "$G" conntrack -F >/dev/null 2>&1 || true
live_daemon "$store" "$work/gw.toml"
live_wait_socket "$store"
live_wait_ready
for _ in $(seq 50); do ip netns exec "$G" ip route get 10.0.1.2 2>/dev/null | grep -q "dev nfrs0" && break; sleep 0.1; done
got=$(ip netns exec "$C" curl -s -m 10 http://198.51.100.10:8000/) || true
[ "$got" = "served by the server namespace" ] && fail "squid intercept fetched without the kernel entry"
grep -q "NF getsockopt(ORIGINAL_DST) failed .*No such file or directory" "$sq/cache.log" \
  || fail "squid did not report the failed SO_ORIGINAL_DST lookup"
got=$(ip netns exec "$C" curl -s -m 10 http://198.51.100.10/) || fail "accel after restart"
[ "$got" = "served by the server namespace" ] || fail "accel after restart: $got"
live_term

# A kernel rule using conntrack in the gateway namespace: the kernel tracks the TUN's traffic
# itself, an inserted entry would block the SYN, so the daemon's start probe leaves them off.
if command -v iptables-legacy >/dev/null; then
  live_gw_toml "$(printf '\n[[route]]\nto = "203.0.113.0/24"\nvia = "198.51.100.10"\ndev = "wan0"')" \
    'tap = "nfrs0"' >"$work/gw.toml"
  ip netns exec "$G" iptables-legacy -A INPUT -m conntrack --ctstate NEW
  live_daemon "$store" "$work/gw.toml"
  live_wait_socket "$store"
  live_wait_ready
  grep -q "TUN nfrs0: the kernel tracks connections in this namespace itself" "$work/daemon.log" \
    || fail "the start probe did not see the kernel's own conntrack"
  for _ in $(seq 50); do ip netns exec "$G" ip route get 10.0.1.2 2>/dev/null | grep -q "dev nfrs0" && break; sleep 0.1; done
  got=$(ip netns exec "$C" curl -s -m 10 http://198.51.100.10/) || fail "accel with the kernel tracking"
  [ "$got" = "served by the server namespace" ] || fail "accel with the kernel tracking: $got"
  live_term
  ip netns exec "$G" iptables-legacy -F INPUT
fi
ip netns exec "$G" ip link show nfrs0 >/dev/null 2>&1 && fail "nfrs0 left behind"
for d in lan0 wan0; do
  [ "$(ip netns exec "$G" cat /proc/sys/net/ipv4/conf/$d/rp_filter)" = 0 ] || fail "rp_filter on $d not put back"
done
echo "live squid: ok ($(($(date +%s) - live_started)) s)"
