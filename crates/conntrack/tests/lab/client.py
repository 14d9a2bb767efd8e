import socket,time,struct
def csum(b):
    if len(b)%2: b+=b"\0"
    s=sum(struct.unpack("!%dH"%(len(b)//2),b)); s=(s>>16)+(s&0xffff); s+=s>>16; return (~s)&0xffff
a=socket.create_connection(("198.51.100.1",80),source_address=("10.0.0.2",40000)); a.send(b"close"); a.recv(10); a.close()
b=socket.create_connection(("198.51.100.1",80),source_address=("10.0.0.3",40001)); b.send(b"keep"); b.recv(10)
u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.bind(("10.0.0.4",5353)); u.sendto(b"q",("198.51.100.1",53)); u.recvfrom(10)
u2=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u2.bind(("10.0.0.5",5354)); u2.sendto(b"q",("198.51.100.9",9))
i=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_ICMP); i.bind(("10.0.0.6",0))
h=struct.pack("!BBHHH",8,0,0,4660,1); h=struct.pack("!BBHHH",8,0,csum(h),4660,1); i.sendto(h,("198.51.100.1",0)); i.recv(100)
g=socket.socket(socket.AF_INET,socket.SOCK_RAW,253); g.bind(("10.0.0.7",0)); g.sendto(b"hello",("198.51.100.1",0))
time.sleep(1)
