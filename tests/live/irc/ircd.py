"""A minimal IRC relay for the live DCC test (python3 stdlib only).

Clients send `NICK name`; the relay answers `:relay 001 name :welcome` so a client knows it may
speak. `PRIVMSG target :text` is relayed to the client named `target` as
`:sender!u@h PRIVMSG target :text`. Every line received and sent is appended to a log file as
one JSON object per line ({"dir": "in"|"out", "peer": nick or address, "line": ...}), so the
test can compare what each side wrote with what the other side got.

Usage: ircd.py ADDRESS PORT LOGFILE
"""

import json
import socket
import sys
import threading

lock = threading.Lock()
clients = {}  # nick -> socket


def log(f, direction, peer, line):
    with lock:
        f.write(json.dumps({"dir": direction, "peer": peer, "line": line}) + "\n")
        f.flush()


def send_line(f, nick, line):
    with lock:
        s = clients.get(nick)
    if s is None:
        log(f, "dropped", nick, line)
        return
    # One line, one write: the helper parses a message only at the start of a segment.
    s.sendall(line.encode("latin-1") + b"\r\n")
    log(f, "out", nick, line)


def serve(conn, addr, f):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    nick = None
    buf = b""
    try:
        while True:
            data = conn.recv(4096)
            if not data:
                break
            buf += data
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.rstrip(b"\r").decode("latin-1")
                log(f, "in", nick or "%s:%d" % addr, line)
                words = line.split(" ", 2)
                if words[0] == "NICK" and len(words) > 1:
                    nick = words[1]
                    with lock:
                        clients[nick] = conn
                    send_line(f, nick, ":relay 001 %s :welcome" % nick)
                elif words[0] == "PRIVMSG" and len(words) == 3 and nick:
                    send_line(f, words[1], ":%s!u@h PRIVMSG %s %s" % (nick, words[1], words[2]))
                elif words[0] == "PING":
                    send_line(f, nick, "PONG " + line[5:])
    finally:
        with lock:
            if nick and clients.get(nick) is conn:
                del clients[nick]
        conn.close()


def main():
    addr, port, logfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    f = open(logfile, "a")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(8)
    while True:
        conn, peer = s.accept()
        threading.Thread(target=serve, args=(conn, peer, f), daemon=True).start()


if __name__ == "__main__":
    main()
