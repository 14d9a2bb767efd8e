import socket,struct,sys
l=sys.argv[1].split(); who,kind=l[0],l[1]
C,S="10.0.0.2","198.51.100.50"
me,peer=(C,S) if who=="c" else (S,C)
def csum(b):
    if len(b)%2: b+=b"\0"
    s=sum(struct.unpack("!%dH"%(len(b)//2),b)); s=(s>>16)+(s&0xffff); s+=s>>16; return (~s)&0xffff
def iph(src,dst,proto,plen):
    h=struct.pack("!BBHHHBBH4s4s",0x45,0,20+plen,0,0x4000,64,proto,0,socket.inet_aton(src),socket.inet_aton(dst))
    return h[:10]+struct.pack("!H",csum(h))+h[12:]
def icmp(t,c,rest,data=b""):
    h=struct.pack("!BBH",t,c,0)+rest+data
    return h[:2]+struct.pack("!H",csum(h))+h[4:]
if kind=="udp":
    sp,dp=int(l[2]),int(l[3])
    u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
    if who=="c": u.bind((C,sp)); u.sendto(b"ping",(S,dp))
    else: u.bind((S,dp)); u.sendto(b"pong",(C,sp))
elif kind=="icmp":
    t,c,i,q=map(int,l[2:6])
    s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_ICMP); s.bind((me,0))
    s.sendto(icmp(t,c,struct.pack("!HH",i,q),b"abcd"),(peer,0))
elif kind=="icmperr":
    t,c=int(l[2]),int(l[3]); p=l[4]; opts=l[7:] if p=="udp" else l[7:]
    to=peer
    for o in l[5:]:
        if o.startswith("to="): to=o[3:]
    rev="rev" in l
    if p=="udp":
        sp,dp=int(l[5]),int(l[6])
        # the quoted datagram: client->server unless rev (server->client)
        if not rev: q=iph(C,S,17,12)+struct.pack("!HHHH",sp,dp,12,0)
        else: q=iph(S,C,17,12)+struct.pack("!HHHH",dp,sp,12,0)
    else:
        it,iid=int(l[5]),int(l[6])
        q=iph(C,S,1,12)+icmp(it,0,struct.pack("!HH",iid,1))
    s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_ICMP); s.bind((me,0))
    s.sendto(icmp(t,c,b"\0\0\0\0",q),(to,0))
elif kind=="proto":
    s=socket.socket(socket.AF_INET,socket.SOCK_RAW,int(l[2])); s.bind((me,0)); s.sendto(b"hello",(peer,0))
