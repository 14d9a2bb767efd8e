import socket,struct,time
def csum(b):
    if len(b)%2: b+=b"\0"
    s=sum(struct.unpack("!%dH"%(len(b)//2),b)); s=(s>>16)+(s&0xffff); s+=s>>16; return (~s)&0xffff
u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.bind(("10.0.0.2",4000)); u.sendto(b"n",("203.0.113.7",53))
u2=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u2.bind(("10.0.0.2",4001)); u2.sendto(b"r",("198.51.100.1",8080))
for src in ("10.0.0.2","10.0.0.3"):
    i=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_ICMP); i.bind((src,0))
    h=struct.pack("!BBHHH",8,0,0,999,1); h=struct.pack("!BBHHH",8,0,csum(h),999,1); i.sendto(h,("198.51.100.1",0))
for n,src in enumerate(("10.0.0.4","10.0.0.5","10.0.0.6")):
    s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind((src,2000)); s.sendto(b"s",("198.51.100.1",7))
time.sleep(0.3)
