import socket,sys,time
mode=sys.argv[1]
if mode=="client":
    g=socket.socket(socket.AF_INET,socket.SOCK_RAW,47); g.bind(("10.0.0.2",0)); g.sendto(b"\x00\x00\x08\x00"+b"x"*20,("198.51.100.1",0))
    g2=socket.socket(socket.AF_INET,socket.SOCK_RAW,47); g2.bind(("10.0.0.3",0)); g2.sendto(b"\x00\x00\x08\x00"+b"x"*20,("198.51.100.2",0))
    u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM,136); u.bind(("10.0.0.4",7000)); u.sendto(b"lite",("198.51.100.1",7001))
    time.sleep(0.3)
else:
    g=socket.socket(socket.AF_INET,socket.SOCK_RAW,47); g.settimeout(2)
    d,a=g.recvfrom(100); print("got",a); g.sendto(b"\x00\x00\x08\x00"+b"y"*20,(a[0],0))
