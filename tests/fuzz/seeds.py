#!/usr/bin/env python3
"""Writes the seed corpora in tests/fuzz/corpus/TARGET/ (run it again after changing a
table; reproducers of past findings live in tests/fuzz/crashes/ and are not made here)."""
import hashlib
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))


def write(target, seeds):
    folder = os.path.join(here, 'corpus', target)
    os.makedirs(folder, exist_ok=True)
    for old in os.listdir(folder):
        os.remove(os.path.join(folder, old))
    for seed in seeds:
        data = seed.encode('latin-1') if isinstance(seed, str) else seed
        with open(os.path.join(folder, hashlib.sha1(data).hexdigest()[:16]), 'wb') as f:
            f.write(data)


# Go's parseNetwork cases (net/dial.go, dial_test.go) and their neighbours.
write('parse_network', [
    'tcp', 'tcp4', 'tcp6', 'udp', 'udp4', 'udp6', 'unix', 'unixgram', 'unixpacket',
    'ip:icmp', 'ip4:1', 'ip6:ipv6-icmp', 'ip4:tcp', 'ip:58', 'ip6:0', 'ip4:ICMP',
    'ip:16777214', 'ip:16777215', 'ip:00001', 'ip', 'ip4', 'ip4:', 'ip:abc', 'ip::1',
    'ip4:icmp:icmp', 'tcp:80', 'unix:', 'TCP', 'tcp ', '', ':', 'udp7', 'ip6:-1',
    'ip4:+1', 'ip:' + 'x' * 40, 'ip4:\0', 'unix\0',
])

# Go's SplitHostPort/JoinHostPort tables (net/ip_test.go), then each network's form.
split_cases = [
    'localhost:http', 'localhost:80', 'localhost%lo0:http', 'localhost%lo0:80',
    '[localhost%lo0]:http', '[localhost%lo0]:80', '127.0.0.1:http', '127.0.0.1:80',
    '[::1]:http', '[::1]:80', '[::1%lo0]:http', '[::1%lo0]:80', ':http', ':80',
    'golang.org:', '127.0.0.1:', '[::1]:', 'golang.org:https%foo',
    'golang.org', '127.0.0.1', '[::1]', '[fe80::1%lo0]', '[localhost%lo0]', 'localhost%lo0',
    '', '::1', 'fe80::1%lo0', 'fe80::1%lo0:80', '[foo:bar]', '[foo:bar]baz', '[foo]bar:baz',
    '[foo]:[bar]:baz', '[foo]:[bar]baz', 'foo[bar]:baz', 'foo]bar:baz', '[foo:bar',
]
write('address', split_cases + [
    'tcp\n127.0.0.1:80', 'tcp\n[::1]:80', 'tcp\n[fe80::1%lo]:http', 'tcp\n[fe80::1%1]:1',
    'tcp4\n:80', 'tcp6\n:0', 'udp6\n[::]:53', 'udp\n:domain', 'udp4\n0.0.0.0:', 'tcp\n:+80',
    'tcp\n1.2.3.4:65535', 'tcp\n1.2.3.4:65536', 'tcp\n1.2.3.4:-1', 'tcp\n1.2.3.4:ssh',
    'tcp4\n[::1]:1', 'tcp6\n127.0.0.1:1', 'tcp\n[::ffff:1.2.3.4]:1', 'tcp\n01.2.3.4:1',
    'tcp\nlocalhost:http', 'tcp\nexample.com:https', 'udp\n[::1%lo]:9', 'tcp\n[::1%]:80',
    'tcp\n[fe80::1%lo%x]:80', 'tcp\n1.2.3.4%lo:80', 'tcp\n[1:2:3:4:5:6:7:8]:8',
    'tcp\n[1:2:3:4:5:6:1.2.3.4]:8', 'tcp\n[::1]:99999999999999999999',
    'ip\n127.0.0.1', 'ip4\n127.0.0.1', 'ip6\n::1', 'ip\nfe80::1%1', 'ip\n', 'ip6\n[::1]',
    'ip:icmp\n::1', 'ip4:1\n10.0.0.1', 'ip\nlocalhost', 'ip6:58\nfe80::1%lo', 'ip4:icmp\n',
    'ip:1\nlocalhost', 'ip6:ipv6-icmp\n::ffff:10.0.0.1', 'ip4:6\n::ffff:10.0.0.1%1',
    'unix\n/tmp/x.sock', 'unix\nrelative', 'unixgram\n@abstract', 'unixpacket\n',
    'unix\n@', 'unix\n@with\0nul', 'unix\n' + 'p' * 107, 'unix\n' + 'p' * 108,
    'unix\n@' + 'a' * 107, 'unix\n@' + 'a' * 108,
])


def frame(text):
    data = text.encode()
    return struct.pack('>I', len(data)) + data


def decoder_seed(newline, cap_index, chunks, stream):
    """Byte 0: bit 0 framing (1 = newline), the rest the cap's index; then the chunk sizes."""
    head = bytes([(cap_index << 1) | (1 if newline else 0), len(chunks)]) + bytes(chunks)
    return head + (stream.encode() if isinstance(stream, str) else stream)


# caps[]: 0, 1, 2, 3, 5, 8, 16, 31, 100, 1000 (tests/fuzz/frame_decoder.cpp)
lp = frame('{"a":1}') + frame('[1,2') + frame('"text"') + frame(' ' * 10 + '7') + frame('{"b":[true,null]}')
write('frame_decoder', [
    decoder_seed(False, 9, [], lp), decoder_seed(False, 9, [1, 2, 3], lp),
    decoder_seed(False, 8, [5], lp), decoder_seed(False, 6, [0, 7], lp),
    decoder_seed(False, 9, [], b'\xff\xff\xff\xff' + b'x' * 10 + frame('{}')),
    decoder_seed(False, 4, [2], frame('123456') + frame('1')),
    decoder_seed(False, 0, [], frame('')), decoder_seed(False, 9, [], b'\0\0'),
    decoder_seed(False, 9, [3], frame('"\\u00e9\\ud83d\\ude00"') + frame('1e400')),
    decoder_seed(False, 9, [], frame('[' * 50 + ']' * 50)),
    decoder_seed(True, 9, [], '{"a":1}\n\nnot json\r\n[1,2,3]\n   \n{"z":"\\n"}\n'),
    decoder_seed(True, 9, [1], '{"a":1}\n\nnot json\r\n[1,2,3]\n   \n{"z":"\\n"}\n'),
    decoder_seed(True, 8, [4, 1], 'x' * 150 + '\n{"ok":true}\n'),
    decoder_seed(True, 5, [0], '12345678\n123456789\n1234567\r\n'),
    decoder_seed(True, 5, [3], ' ' * 20 + '\n1\n'),
    decoder_seed(True, 9, [], '{"unterminated":'), decoder_seed(True, 9, [], '\n\r\n \t\n'),
    decoder_seed(True, 9, [2], 'true\nfalse\nnull\n-0.5e3\n"\xc3\xa9"\n'),
    decoder_seed(True, 9, [], b'"\xff"\n1\n'), decoder_seed(True, 9, [], '1e999\n2\n'),
    decoder_seed(True, 1, [1], '1\n22\n3'), decoder_seed(True, 0, [], '\n\n1\n'),
])


def cmsg(level, type_, payload, length=None):
    n = 16 + len(payload) if length is None else length
    body = struct.pack('<Qii', n, level, type_) + payload
    return body + b'\0' * ((-len(body)) % 8)


SOL_SOCKET, SCM_RIGHTS, SCM_CREDENTIALS, SOL_IP = 1, 1, 2, 0
fds = lambda *f: b''.join(struct.pack('<i', x) for x in f)
raw = lambda data: b'\0' + data
structured = lambda *b: b'\1' + bytes(b)
write('scm_rights', [
    raw(b''), raw(cmsg(SOL_SOCKET, SCM_RIGHTS, fds(3))), raw(cmsg(SOL_SOCKET, SCM_RIGHTS, fds(3, 4, 5))),
    raw(cmsg(SOL_SOCKET, SCM_CREDENTIALS, struct.pack('<iII', 1, 0, 0)) + cmsg(SOL_SOCKET, SCM_RIGHTS, fds(7, 8))),
    raw(cmsg(SOL_SOCKET, SCM_RIGHTS, fds(3))[:18]), raw(cmsg(SOL_SOCKET, SCM_RIGHTS, fds(3), length=8)),
    raw(cmsg(SOL_SOCKET, SCM_RIGHTS, fds(3), length=1 << 40)), raw(cmsg(SOL_SOCKET, SCM_RIGHTS, b'', length=0)),
    raw(cmsg(SOL_SOCKET, SCM_RIGHTS, fds(3) + b'\1\2')), raw(cmsg(SOL_IP, SCM_RIGHTS, fds(3))),
    raw(cmsg(SOL_SOCKET, SCM_RIGHTS, fds(9)) + cmsg(SOL_SOCKET, SCM_RIGHTS, fds(10, 11), length=100)),
    structured(0), structured(1, 1, 0, 16), structured(1, 3, 0, 0), structured(2, 2, 5, 1, 30, 4),
    structured(3, 7, 0x47, 3, 1, 40, 31), structured(4, 1, 2, 3, 4, 0, 20), structured(1, 7, 0, 3),
    structured(2, 0x81, 4, 1, 17, 16), structured(1, 5, 1, 0, 8),
])
