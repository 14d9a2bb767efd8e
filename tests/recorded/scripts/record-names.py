#!/usr/bin/env python3
"""How iptables-legacy -L (without -n) prints addresses, networks, ports and protocols as names.
Writes ../names/. The namespace gets the hosts file below; DNS goes nowhere (127.0.0.1:53 closed)."""
import os
import shlex
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nsutil import REC_ROOT, ns_new, ns_del, run, tsv_row  # noqa: E402

I = "iptables-legacy"
HOSTS = """127.0.0.1 localhost
10.1.2.3 host-a.example host-a
10.9.9.8 dual
10.9.9.9 dual
10.1.2.0 netaddr-as-host
"""

# (table, chain, args)
RULES = [
    ("filter", "INPUT", "-s 127.0.0.1 -j ACCEPT"),
    ("filter", "INPUT", "-d 127.0.0.1/32 -j ACCEPT"),
    ("filter", "INPUT", "-s 127.0.0.0/8 -j ACCEPT"),
    ("filter", "INPUT", "-s 127.0.0.2 -j ACCEPT"),
    ("filter", "INPUT", "-s 0.0.0.0/0 -d 0.0.0.0/0 -j ACCEPT"),
    ("filter", "INPUT", "-s 0.0.0.0/8 -j ACCEPT"),
    ("filter", "INPUT", "-s 0.0.0.0/32 -j ACCEPT"),
    ("filter", "INPUT", "-s 169.254.0.0/16 -j ACCEPT"),
    ("filter", "INPUT", "-s 10.1.2.3 -j ACCEPT"),
    ("filter", "INPUT", "! -s 10.1.2.3 -j ACCEPT"),
    ("filter", "INPUT", "-s 10.1.2.3/24 -j ACCEPT"),
    ("filter", "INPUT", "-s 10.1.2.0/24 -j ACCEPT"),
    ("filter", "INPUT", "-s 10.1.2.0/32 -j ACCEPT"),
    ("filter", "INPUT", "-s 10.1.2.3/255.255.0.255 -j ACCEPT"),
    ("filter", "INPUT", "-d 8.8.8.8 -j ACCEPT"),
    ("filter", "INPUT", "-s host-a -j ACCEPT"),
    ("filter", "INPUT", "-s host-a.example/16 -j ACCEPT"),
    ("filter", "INPUT", "-s dual -j ACCEPT"),
    ("filter", "INPUT", "-s localhost -j ACCEPT"),
    ("filter", "INPUT", "-p tcp --dport 22 -j ACCEPT"),
    ("filter", "INPUT", "-p tcp --dport 80 -j ACCEPT"),
    ("filter", "INPUT", "-p tcp --dport 53 -j ACCEPT"),
    ("filter", "INPUT", "-p udp --dport 53 -j ACCEPT"),
    ("filter", "INPUT", "-p tcp --dport 8080 -j ACCEPT"),
    ("filter", "INPUT", "-p tcp --dport 443 -j ACCEPT"),
    ("filter", "INPUT", "-p tcp --sport 3306 -j ACCEPT"),
    ("filter", "INPUT", "-p tcp --dport 12345 -j ACCEPT"),
    ("filter", "INPUT", "-p tcp --dport 1:1023 -j ACCEPT"),
    ("filter", "INPUT", "-p tcp --dport 22:80 -j ACCEPT"),
    ("filter", "INPUT", "-p tcp ! --dport 22 -j ACCEPT"),
    ("filter", "INPUT", "-p udp --dport 123 -j ACCEPT"),
    ("filter", "INPUT", "-p udp --sport 67 --dport 68 -j ACCEPT"),
    ("filter", "INPUT", "-p udp --dport 8080 -j ACCEPT"),
    ("filter", "INPUT", "-p tcp --dport http -j ACCEPT"),
    ("filter", "INPUT", "-p tcp -m multiport --dports 22,80,443,8080 -j ACCEPT"),
    ("filter", "INPUT", "-p tcp -m multiport --sports 1000:2000,53 -j ACCEPT"),
    ("filter", "INPUT", "-p icmp --icmp-type echo-request -j ACCEPT"),
    ("filter", "INPUT", "-p icmp --icmp-type 3/4 -j ACCEPT"),
    ("filter", "INPUT", "-p 47 -j ACCEPT"),
    ("filter", "INPUT", "-p sctp -j ACCEPT"),
    ("filter", "INPUT", "-p 200 -j ACCEPT"),
    ("filter", "INPUT", "-p all -j ACCEPT"),
    ("filter", "INPUT", "! -p tcp -j ACCEPT"),
    ("filter", "FORWARD", "-i eth0 -o eth1 -s 10.1.2.3 -d 127.0.0.1 -p tcp --dport 22 -j ACCEPT"),
    ("nat", "PREROUTING", "-p tcp --dport 80 -j DNAT --to-destination 10.1.2.3:8080"),
    ("nat", "POSTROUTING", "-s 10.1.2.0/24 -j SNAT --to-source 127.0.0.1"),
    ("nat", "OUTPUT", "-d 10.1.2.3 -p tcp --dport 22 -j REDIRECT --to-ports 8080"),
]


def listing(ns, table, chain, extra):
    t0 = time.monotonic()
    rc, out, err = run(ns, [I, "-t", table, "-L", chain] + extra, timeout=10)
    secs = time.monotonic() - t0
    lines = out.splitlines()[2:]
    if rc != 0:
        lines.append("<rc %d: %s>" % (rc, err.strip()))
    return lines, secs


def main():
    out_dir = os.path.join(REC_ROOT, "names")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    with open(os.path.join(out_dir, "hosts"), "w") as f:
        f.write(HOSTS)
    ns = ns_new(hosts=HOSTS)
    rows = []
    slow = []
    for table, chain, args in RULES:
        rc, _, err = run(ns, [I, "-t", table, "-A", chain] + shlex.split(args))
        _, s_out, _ = run(ns, [I, "-t", table, "-S", chain])
        s_lines = [ln for ln in s_out.splitlines() if ln.startswith("-A ")]
        l_lines, secs = listing(ns, table, chain, [])
        if secs > 2:
            slow.append("%s: -L took %.1fs" % (args, secs))
        ln_lines, _ = listing(ns, table, chain, ["-n"])
        lv_lines, _ = listing(ns, table, chain, ["-v"])
        rows.append([table, chain, args, rc, "\n".join(s_lines), "\n".join(l_lines), "\n".join(ln_lines),
                     "\n".join(lv_lines), err.rstrip("\n")])
        run(ns, [I, "-t", table, "-F", chain])
    with open(os.path.join(out_dir, "listings.tsv"), "w") as f:
        f.write(tsv_row(["table", "chain", "args", "rc", "S_line", "L_line", "L_n_line", "L_v_line", "stderr"]))
        for r in rows:
            f.write(tsv_row(r))
    # All filter INPUT rules at once, whole output verbatim.
    for table, chain, args in RULES:
        if (table, chain) == ("filter", "INPUT"):
            run(ns, [I, "-t", table, "-A", chain] + shlex.split(args))
    for suffix, extra in (("L", []), ("L-n", ["-n"]), ("L-v", ["-v"]), ("L-line-numbers", ["--line-numbers"])):
        _, out, _ = run(ns, [I, "-L", "INPUT"] + extra, timeout=20)
        with open(os.path.join(out_dir, "input-all.%s.txt" % suffix), "w") as f:
            f.write(out)
    _, out, _ = run(ns, [I, "-S", "INPUT"])
    with open(os.path.join(out_dir, "input-all.S.txt"), "w") as f:
        f.write(out)
    ns_del(ns)
    for s in slow:
        print("slow:", s)
    print("recorded %d rules" % len(rows))


if __name__ == "__main__":
    main()
