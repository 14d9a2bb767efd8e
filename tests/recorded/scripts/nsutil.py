"""Shared helpers of the python recording scripts: throwaway namespaces named
nfrs-rec-<pid>-<n>, deleted at exit, with fixed /etc/hosts and /etc/resolv.conf inside."""
import atexit
import os
import shutil
import subprocess

REC_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_default_shared = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(REC_ROOT))), "shared")
CORPUS = os.path.join(os.environ.get("NFRS_SHARED", _default_shared), "corpus")

_PREFIX = "nfrs-rec-%d" % os.getpid()
_seq = [0]
_made = []

# Inside every namespace: only localhost resolves from the hosts file, and DNS goes to
# 127.0.0.1 on a loopback that is down, so lookups of other addresses fail fast, send nothing,
# and behave the same way on every machine.
HOSTS = "127.0.0.1 localhost\n"
RESOLV = "nameserver 127.0.0.1\n"


def ns_new(hosts=HOSTS):
    _seq[0] += 1
    name = "%s-%d" % (_PREFIX, _seq[0])
    etc = "/etc/netns/" + name
    os.makedirs(etc, exist_ok=True)
    with open(etc + "/hosts", "w") as f:
        f.write(hosts)
    with open(etc + "/resolv.conf", "w") as f:
        f.write(RESOLV)
    subprocess.run(["ip", "netns", "add", name], check=True)
    _made.append(name)
    # lo stays DOWN: a DNS query to 127.0.0.1 then fails at once without sending a packet, so
    # `-L` without -n never puts packets through the chains being listed (counters stay exact).
    return name


def ns_del(name):
    subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)
    shutil.rmtree("/etc/netns/" + name, ignore_errors=True)
    if name in _made:
        _made.remove(name)


@atexit.register
def _cleanup():
    for name in list(_made):
        ns_del(name)


def run(ns, argv, stdin=None, timeout=10):
    """Run argv inside ns; returns (rc, stdout, stderr) as text. rc 124 = timed out."""
    try:
        p = subprocess.run(["ip", "netns", "exec", ns] + argv, input=stdin,
                           capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        return 124, out, err


def esc(s):
    """One TSV cell: backslash, tab, newline and CR escaped as \\\\, \\t, \\n, \\r."""
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def tsv_row(cells):
    return "\t".join(esc(str(c)) for c in cells) + "\n"
