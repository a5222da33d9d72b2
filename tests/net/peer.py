# A peer for ipckit's net interop tests, written with nothing but python3's socket module.
#   peer.py listen NETWORK ADDRESS          bind, print the bound address, echo one peer
#   peer.py dial NETWORK ADDRESS [LOCAL]    connect, send the test payloads, check echoes
# Exit status 0 and "ok" when every byte came back as sent.
import socket
import sys

FAMILY = {
    # The dual-stack networks are dialed and listened on at 127.0.0.1 in these tests.
    "tcp": (socket.AF_INET, socket.SOCK_STREAM),
    "udp": (socket.AF_INET, socket.SOCK_DGRAM),
    "tcp4": (socket.AF_INET, socket.SOCK_STREAM),
    "tcp6": (socket.AF_INET6, socket.SOCK_STREAM),
    "udp4": (socket.AF_INET, socket.SOCK_DGRAM),
    "udp6": (socket.AF_INET6, socket.SOCK_DGRAM),
    "unix": (socket.AF_UNIX, socket.SOCK_STREAM),
    "unixgram": (socket.AF_UNIX, socket.SOCK_DGRAM),
    "unixpacket": (socket.AF_UNIX, socket.SOCK_SEQPACKET),
}


def sizes(net):
    if net in ("tcp", "tcp4", "tcp6", "unix"):
        return [1, 100, 1000, 100000]
    if net == "unixpacket":
        return [1, 100, 1000, 8000]
    return [0, 1, 100, 1000, 8000]


def payload(k, n):
    return bytes((i * 7 + k) % 256 for i in range(n))


def parse(net, text):
    if net.startswith("unix"):
        return "\0" + text[1:] if text.startswith("@") else text
    host, port = text.rsplit(":", 1)
    return (host.strip("[]"), int(port))


def show(net, addr):
    if net.startswith("unix"):
        if isinstance(addr, bytes):
            addr = addr.decode()
        return "@" + addr[1:] if addr.startswith("\0") else addr
    host, port = addr[0], addr[1]
    return ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def listen(net, text):
    family, kind = FAMILY[net]
    s = socket.socket(family, kind)
    s.bind(parse(net, text))
    if kind != socket.SOCK_DGRAM:
        s.listen(1)
    print(show(net, s.getsockname()), flush=True)
    if kind == socket.SOCK_DGRAM:
        while True:
            data, peer = s.recvfrom(70000)
            if data == b"quit":
                return 0
            s.sendto(data, peer)
    c, _ = s.accept()
    while True:
        data = c.recv(1 << 16)
        if not data:
            return 0
        c.sendall(data)


def dial(net, text, local):
    family, kind = FAMILY[net]
    s = socket.socket(family, kind)
    if local:
        s.bind(parse(net, local))
    s.connect(parse(net, text))
    s.settimeout(10)
    for k, n in enumerate(sizes(net)):
        data = payload(k, n)
        s.sendall(data) if kind == socket.SOCK_STREAM else s.send(data)
        back = recv_exact(s, n) if kind == socket.SOCK_STREAM else s.recv(70000)
        if back != data:
            print("mismatch at message %d: sent %d bytes, got %d" % (k, n, len(back)), flush=True)
            return 1
    print("ok", flush=True)
    return 0


if __name__ == "__main__":
    mode, net, text = sys.argv[1:4]
    local = sys.argv[4] if len(sys.argv) > 4 else ""
    sys.exit(listen(net, text) if mode == "listen" else dial(net, text, local))
