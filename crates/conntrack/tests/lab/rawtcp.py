import socket,struct,sys
def csum(b):
    if len(b)%2: b+=b"\0"
    s=sum(struct.unpack("!%dH"%(len(b)//2),b)); s=(s>>16)+(s&0xffff); s+=s>>16; return (~s)&0xffff
def tcp(src,dst,sp,dp,seq,ack,flags,win):
    h=struct.pack("!HHIIBBHHH",sp,dp,seq,ack,5<<4,flags,win,0,0)
    ph=socket.inet_aton(src)+socket.inet_aton(dst)+struct.pack("!BBH",0,6,len(h))
    c=csum(ph+h); return h[:16]+struct.pack("!H",c)+h[18:]
s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_TCP)
src,dst=sys.argv[1],sys.argv[2]; s.bind((src,0))
s.sendto(tcp(src,dst,int(sys.argv[3]),int(sys.argv[4]),int(sys.argv[5]),int(sys.argv[6]),int(sys.argv[7]),int(sys.argv[8])),(dst,0))
