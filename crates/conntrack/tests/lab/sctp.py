import socket,struct,sys
def crc32c(b):
    c=0xffffffff
    for x in b:
        c^=x
        for _ in range(8): c=(c>>1)^0x82f63b78 if c&1 else c>>1
    return (~c)&0xffffffff
def chunk(t,flags,body):
    l=4+len(body); pad=b"\0"*((4-l%4)%4)
    return struct.pack("!BBH",t,flags,l)+body+pad
l=sys.argv[1].split()
who,port,kind,vtag=l[0],int(l[1]),l[2],int(l[3],16)
C,S="10.0.0.2","198.51.100.50"
src,dst,sp,dp=(C,S,port,7000) if who=="c" else (S,C,7000,port)
tag=int(l[4],16) if len(l)>4 and not l[4].startswith("bad") else 0
body={
 "INIT": lambda: chunk(1,0,struct.pack("!IIHHI",tag,65535,10,10,1)),
 "INIT_ACK": lambda: chunk(2,0,struct.pack("!IIHHI",tag,65535,10,10,1)+struct.pack("!HH",7,8)+b"cook"),
 "COOKIE_ECHO": lambda: chunk(10,0,b"cook"),
 "COOKIE_ACK": lambda: chunk(11,0,b""),
 "DATA": lambda: chunk(0,3,struct.pack("!IHHI",1,0,0,0)+b"data"),
 "SACK": lambda: chunk(3,0,struct.pack("!IIHH",1,65535,0,0)),
 "SHUTDOWN": lambda: chunk(7,0,struct.pack("!I",1)),
 "SHUTDOWN_ACK": lambda: chunk(8,0,b""),
 "SHUTDOWN_COMPLETE": lambda: chunk(14,0,b""),
 "HEARTBEAT": lambda: chunk(4,0,struct.pack("!HH",1,8)+b"beat"),
 "INIT+DATA": lambda: chunk(1,0,struct.pack("!IIHHI",tag,65535,10,10,1))+chunk(0,3,struct.pack("!IHHI",1,0,0,0)+b"data"),
}[kind]()
h=struct.pack("!HHII",sp,dp,vtag,0)+body
c=crc32c(h)
if "bad" in l: c^=0x1234
h=h[:8]+struct.pack("<I",c)+h[12:]
s=socket.socket(socket.AF_INET,socket.SOCK_RAW,132); s.bind((src,0)); s.sendto(h,(dst,0))
