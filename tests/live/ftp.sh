#!/usr/bin/env bash
# Live FTP through `nfrs run` (root only): vsftpd in a server namespace, lftp and curl in a client
# namespace, nfrs routing between them with MASQUERADE and `-t raw -j CT --helper ftp`
# (issue 6 item 6). The server has no route to the client network, and FORWARD lets a new
# connection through only when it is the FTP control connection or RELATED to one, so every
# data connection must be one the helper expected. Checks:
#   - without the helper, an active-mode PORT names the client's private address and vsftpd
#     refuses it (so the passes below are the helper's doing);
#   - active mode (lftp: PORT; curl: EPRT): the address is rewritten to the gateway's, the
#     server's data connection is RELATED and reaches the client; two files over one control
#     connection (the second transfer runs after a length-changing rewrite: sequence adjustment);
#   - passive mode (lftp: PASV/227; curl: EPSV/229): the client's data connection is RELATED;
#   - every file arrives intact (cmp), the RELATED rule counted the data connections, and
#     `conntrack -L` shows an active one sent on to the client and a passive one.
# Usage: tests/live/ftp.sh [path/to/nfrs]   (default: builds it in $CARGO_TARGET_DIR)
# Needs the Debian packages vsftpd and lftp (and curl).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/live/lib.sh
live_logs="daemon.log vsftpd.out vsftpd.log curl.err lftp.out"
live_init "live ftp" f "${1:-}"
for t in ip ethtool curl lftp vsftpd; do
  command -v "$t" >/dev/null || fail "$t missing (apt-get install -y vsftpd lftp curl)"
done
live_topology
live_start

# vsftpd: anonymous, read-only, in the foreground, its own config, listening on the server
# address only. Files are served from a root the ftp user can read but not write.
ftproot="$work/ftproot"
mkdir -p "$ftproot" "$work/empty"
chmod 755 "$work" "$ftproot" "$work/empty"
head -c 3000000 /dev/urandom >"$ftproot/big.bin"
head -c 70000 /dev/urandom >"$ftproot/small.bin"
chmod 644 "$ftproot"/*.bin
ftp_user=ftp
id -u "$ftp_user" >/dev/null 2>&1 || ftp_user=nobody
cat >"$work/vsftpd.conf" <<CONF
listen=YES
listen_ipv6=NO
listen_address=198.51.100.10
listen_port=21
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root=$ftproot
ftp_username=$ftp_user
local_enable=NO
write_enable=NO
pasv_enable=YES
port_enable=YES
connect_from_port_20=NO
pasv_min_port=40000
pasv_max_port=40100
secure_chroot_dir=$work/empty
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
xferlog_enable=YES
xferlog_std_format=NO
log_ftp_protocol=YES
dual_log_enable=NO
vsftpd_log_file=$work/vsftpd.log
syslog_enable=NO
use_localtime=NO
CONF
live_bg ip netns exec "$S" vsftpd "$work/vsftpd.conf" >"$work/vsftpd.out" 2>&1
live_wait_tcp "$S" 198.51.100.10 21

# MASQUERADE; new connections pass only as the FTP control connection or RELATED to one.
live_helper_firewall ftp 21

lftp_get() { # MODE(on|off) FILE... : one lftp session fetching the files into $work/got/
  local passive="$1"
  shift
  local cmds="set ftp:passive-mode $passive; set ftp:prefer-epsv no; set net:max-retries 1; set net:timeout 4; set net:reconnect-interval-base 1; set ftp:ssl-allow no; lcd $work/got"
  for f in "$@"; do cmds="$cmds; get $f"; done
  ip netns exec "$C" timeout 20 lftp -e "$cmds; bye" -u anonymous, ftp://198.51.100.10 >"$work/lftp.out" 2>&1
}

check_files() { # FILE... : each fetched file equals the served one
  for f in "$@"; do
    cmp -s "$ftproot/$f" "$work/got/$f" || fail "$f differs from the served file"
  done
}

# 1. No helper yet: vsftpd sees a PORT naming 10.0.1.2 on a connection from 198.51.100.2 and
#    refuses it; the transfer fails.
mkdir -p "$work/got"
if ip netns exec "$C" timeout 10 curl -sS --max-time 6 --ftp-port - --disable-eprt \
  -o "$work/got/nohelper.bin" ftp://198.51.100.10/small.bin 2>"$work/curl.err"; then
  fail "active FTP worked through MASQUERADE without the helper"
fi
grep -q '"PORT 10,0,1,2,' "$work/vsftpd.log" || fail "vsftpd did not see the untranslated PORT"
grep -q '"500 Illegal PORT command."' "$work/vsftpd.log" || fail "vsftpd did not refuse the PORT"
echo "live ftp: without CT --helper, vsftpd saw 'PORT 10,0,1,2,...', refused it, the transfer failed"

"$nfrs" iptables -t raw -A PREROUTING -i lan0 -p tcp --dport 21 -j CT --helper ftp \
  || fail "iptables -t raw CT --helper ftp via daemon"

# 2. Active mode, PORT (lftp), two files over one control connection.
rm -f "$work/got"/*
lftp_get off big.bin small.bin || { cat "$work/lftp.out"; fail "lftp active mode"; }
check_files big.bin small.bin
n_port="$(grep -c 'FTP command: Client "198.51.100.2", "PORT 198,51,100,2,' "$work/vsftpd.log" || true)"
[ "$n_port" -ge 2 ] || fail "vsftpd did not see two rewritten PORT commands (saw $n_port)"
echo "live ftp: active (PORT, lftp): 2 files intact; vsftpd saw 'PORT 198,51,100,2,...' x$n_port"

# 3. Active mode, EPRT (curl).
rm -f "$work/got"/*
ip netns exec "$C" timeout 15 curl -sS --max-time 10 --ftp-port - -o "$work/got/small.bin" \
  ftp://198.51.100.10/small.bin || fail "curl active mode (EPRT)"
check_files small.bin
grep -q '"EPRT |1|198.51.100.2|' "$work/vsftpd.log" || fail "vsftpd did not see a rewritten EPRT"
echo "live ftp: active (EPRT, curl): file intact; vsftpd saw 'EPRT |1|198.51.100.2|...'"

# 4. Passive mode, PASV/227 (lftp), two files over one control connection.
rm -f "$work/got"/*
lftp_get on big.bin small.bin || { cat "$work/lftp.out"; fail "lftp passive mode"; }
check_files big.bin small.bin
grep -q '"PASV"' "$work/vsftpd.log" || fail "lftp did not use PASV"
echo "live ftp: passive (PASV, lftp): 2 files intact"

# 5. Passive mode, EPSV/229 (curl).
rm -f "$work/got"/*
ip netns exec "$C" timeout 15 curl -sS --max-time 10 -o "$work/got/big.bin" \
  ftp://198.51.100.10/big.bin || fail "curl passive mode (EPSV)"
check_files big.bin
grep -q '"EPSV"' "$work/vsftpd.log" || fail "curl did not use EPSV"
echo "live ftp: passive (EPSV, curl): file intact"

# Each data connection's first packet was RELATED with helper ftp (the rule's counter).
rel="$("$nfrs" iptables -L FORWARD -v -n -x | awk '/helper match "ftp"/ {print $1}')"
[ "${rel:-0}" -ge 6 ] || { "$nfrs" iptables -L FORWARD -v -n -x; fail "RELATED helper rule counted ${rel:-0} packets"; }
ct="$("$nfrs" conntrack -L 2>/dev/null)"
# Active: the server's data connection to the gateway was sent on to the client (the NAT of
# the expected connection follows its master's). Passive: the client's to the server's port.
echo "$ct" | grep -q "^tcp .* src=198.51.100.10 dst=198.51.100.2 sport=[0-9]* dport=[0-9]* src=10.0.1.2 dst=198.51.100.10 " \
  || { echo "$ct"; fail "conntrack -L: no active data connection sent on to the client"; }
echo "$ct" | grep -q "^tcp .* src=10.0.1.2 dst=198.51.100.10 sport=[0-9]* dport=40[01][0-9][0-9] src=198.51.100.10 dst=198.51.100.2 " \
  || { echo "$ct"; fail "conntrack -L: no passive data connection"; }
echo "live ftp: RELATED rule counted $rel packets; conntrack -L shows active and passive data connections"

live_stop
