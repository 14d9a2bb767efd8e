import socket,struct,sys
who,cov,pp,good=sys.argv[1],int(sys.argv[2]),int(sys.argv[3]),sys.argv[4]=="good"
C,S="10.0.0.2","198.51.100.50"
src,dst,sp,dp=(C,S,6000,7000) if who=="c" else (S,C,7000,6000)
def csum(b):
    if len(b)%2: b+=b"\0"
    s=sum(struct.unpack("!%dH"%(len(b)//2),b)); s=(s>>16)+(s&0xffff); s+=s>>16; return (~s)&0xffff
data=b"litedata"
h=struct.pack("!HHHH",sp,dp,cov,0)+data
L=len(h); c=cov if cov else L
ph=socket.inet_aton(src)+socket.inet_aton(dst)+struct.pack("!BBH",0,pp,L)
k=csum(ph+h[:c])
if not good: k^=0x5555
h=h[:6]+struct.pack("!H",k)+h[8:]
s=socket.socket(socket.AF_INET,socket.SOCK_RAW,136); s.bind((src,0)); s.sendto(h,(dst,0))
