"""Shared pieces of the live DCC test programs (python3 stdlib only): the file content each
sender serves, a line-based IRC client, and DCC (CTCP) message parsing."""

import hashlib
import ipaddress
import json
import socket

TIMEOUT = 15


def content(name, size):
    """The bytes sender `name` serves: a keyed stream, different for every sender."""
    out = bytearray()
    i = 0
    while len(out) < size:
        out += hashlib.sha256(("%s:%d" % (name, i)).encode()).digest()
        i += 1
    return bytes(out[:size])


def ip_number(addr):
    return int(ipaddress.IPv4Address(addr))


def ip_text(number):
    return str(ipaddress.IPv4Address(number))


class Irc:
    """One IRC connection from `source` (an address of this host) to the relay."""

    def __init__(self, source, server, port, nick):
        self.sock = socket.create_connection((server, port), timeout=TIMEOUT,
                                             source_address=(source, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.nick = nick
        self.write("NICK " + nick)
        line = self.read_line()
        if " 001 " not in line:
            raise RuntimeError("no welcome: %r" % line)

    def write(self, line):
        self.sock.sendall(line.encode("latin-1") + b"\r\n")

    def read_line(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(4096)
            if not data:
                raise RuntimeError("relay closed the connection")
            self.buf += data
        raw, self.buf = self.buf.split(b"\n", 1)
        return raw.rstrip(b"\r").decode("latin-1")

    def privmsg(self, to, text):
        self.write("PRIVMSG %s :%s" % (to, text))

    def wait_dcc(self, verb, sender=None):
        """The next `\\1DCC VERB ...\\1` (from `sender` if given): (sender, words after VERB)."""
        while True:
            line = self.read_line()
            if not line.startswith(":") or " PRIVMSG " not in line or " :\x01DCC " not in line:
                continue
            who = line[1:].split("!", 1)[0]
            text = line.split(" :\x01DCC ", 1)[1].rstrip("\x01")
            words = text.split(" ")
            if words[0] != verb or (sender and who != sender):
                continue
            return who, words[1:]


def dump(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")
