import socket,struct,sys,subprocess,time
R=sys.argv[1]; who=sys.argv[2]; line=sys.argv[3].split()
def csum(b):
    if len(b)%2: b+=b"\0"
    s=sum(struct.unpack("!%dH"%(len(b)//2),b)); s=(s>>16)+(s&0xffff); s+=s>>16; return (~s)&0xffff
w,sport,flags,seq,ack,win=line[:6]; opts=dict(x.split("=") for x in line[6:])
F=0
for ch in flags: F|={"F":1,"S":2,"R":4,"P":8,"A":16,"U":32}[ch]
o=b""
if "ws" in opts: o=bytes([1,3,3,int(opts["ws"])])
n=int(opts.get("len",0))
if w=="c": src,dst,sp,dp="10.0.0.2","198.51.100.50",int(sport),80
else: src,dst,sp,dp="198.51.100.50","10.0.0.2",80,int(sport)
hl=20+len(o)
h=struct.pack("!HHIIBBHHH",sp,dp,int(seq),int(ack),(hl//4)<<4,F,int(win),0,0)+o+b"\0"*n
ph=socket.inet_aton(src)+socket.inet_aton(dst)+struct.pack("!BBH",0,6,len(h))
c=csum(ph+h); h=h[:16]+struct.pack("!H",c)+h[18:]
s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_TCP); s.bind((src,0)); s.sendto(h,(dst,0))
