#!/usr/bin/env python3
"""Inject frames and record what the kernel sends back (run inside the wire namespace).

stdin: lines `<dev> <frame hex>` (dev lan0 -> wire iface wlan, wan0 -> wwan).
stdout: for each frame `> <dev> <hex>` then every frame received on any wire within 200 ms as
`< <dev> <hex>` (frames the wires send themselves are skipped).
"""
import select, socket, sys, time

IFS = {"lan0": "wlan", "wan0": "wwan"}
socks = {}
for dev, ifname in IFS.items():
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind((ifname, 0))
    s.setblocking(False)
    socks[dev] = s

def drain(timeout):
    out = []
    end = time.time() + timeout
    while True:
        left = end - time.time()
        if left <= 0:
            return out
        r, _, _ = select.select(list(socks.values()), [], [], left)
        for dev, s in socks.items():
            if s in r:
                while True:
                    try:
                        data, addr = s.recvfrom(65535)
                    except BlockingIOError:
                        break
                    if addr[2] == socket.PACKET_OUTGOING:
                        continue
                    out.append((dev, data))

drain(0.3)
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    dev, hexs = line.split()
    socks[dev].send(bytes.fromhex(hexs))
    print(">", dev, hexs)
    for d, data in drain(0.2):
        print("<", d, data.hex())
    sys.stdout.flush()
