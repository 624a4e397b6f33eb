#!/usr/bin/env python3
# Regenerates the seed corpus in fuzz/corpus/ (needs PyYAML). Run: python3 fuzz/make_seeds.py
import json, struct, hmac, hashlib, zlib, yaml, os
FUZZ = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(FUZZ)
C = os.path.join(FUZZ, 'corpus')
def w(t, name, data):
    os.makedirs(f'{C}/{t}', exist_ok=True)
    open(f'{C}/{t}/{name}', 'wb').write(data if isinstance(data, bytes) else data.encode())

def enc(kind=1, flags=1, state=1, temporal=0, network=0, prio=100, epoch=3, inc=7, seq=1,
        heard=0xFFFF, group=b'g', member=b'a', hot=b'b', key=None):
    out = b'RDG' + bytes([2, kind]) + struct.pack('>H', flags) + bytes([state, temporal, network, 1 if key else 0])
    out += struct.pack('>HQQQH', prio, epoch, inc, seq, heard)
    for n in (group, member, hot):
        out += bytes([len(n)]) + n
    if key:
        out += hmac.new(key, out, hashlib.sha256).digest()
    return out

# wire_decode: key[4] stale[u16] max[1], records dt tag len body
KEY = b'kkkk'
pre = KEY + struct.pack('>H', 500) + bytes([4])
def rec(dt, tag, body): return bytes([dt, tag, len(body)]) + body
w('wire_decode', 'heartbeats', pre + b''.join(rec(100, 0, enc(seq=s)) for s in (1, 2, 2, 3)))
w('wire_decode', 'signed-two-networks', pre + b''.join(rec(100, 0, enc(seq=s, network=n, key=KEY)) for s in (1, 2) for n in (0, 1)))
w('wire_decode', 'restart-and-status', pre + rec(10, 0, enc(state=0, hot=b'', heard=0xFFFF, inc=9, seq=5))
  + rec(10, 0, enc(inc=2, seq=1, heard=40)) + rec(250, 0, enc(inc=2, seq=2))
  + rec(1, 0, enc(kind=5, member=b'rdg-status', state=3, hot=b'', flags=0))
  + rec(1, 0, enc(kind=6, state=0, hot=b'a', member=b'a')) + rec(1, 1, bytes(range(40))))

# carousel_frame: records dt tag len[u16] body
def frame(kind, session, oid, version, index, count, payload):
    h = b'RDGC' + bytes([1, kind, 0, 0]) + struct.pack('>IIIII', session, oid, version, index, count)
    h += struct.pack('>I', len(payload))
    crc = zlib.crc32(h[:32] + payload) & 0xffffffff
    return h + struct.pack('>I', crc) + payload
def ann(session, oid, data, name, cs, with_crc, kind=0):
    count = max(1, -(-len(data) // cs))
    ocrc = zlib.crc32(data) & 0xffffffff
    p = bytes([kind, 1 if with_crc else 0]) + struct.pack('>HQII', len(name), len(data), cs, ocrc if with_crc else 0) + name
    return frame(2, session, oid, zlib.crc32(data) & 0xffffffff, 0, count, p), count
def crec(dt, tag, body): return bytes([dt, tag]) + struct.pack('>H', len(body)) + body
def obj(session, oid, data, name, cs, with_crc=True, kind=0, order=None, tag=0):
    a, count = ann(session, oid, data, name, cs, with_crc, kind)
    v = zlib.crc32(data) & 0xffffffff
    out = crec(5, tag, a)
    for i in (order or range(count)):
        out += crec(5, tag, frame(1, session, oid, v, i, count, data[i*cs:(i+1)*cs]))
    return out
welcome = b'Welcome to Infocast.\n'
boot = b'name=bootcast_1900\nkernelAddress=224.2.2.3:22223\nkernelName=stb-kernel-1900\n'
w('carousel_frame', 'two-objects', obj(1, 0, welcome, b'welcome.txt', 8) + obj(1, 1, boot, b'bootcast_1900', 32, False, 1))
w('carousel_frame', 'out-of-order-two-senders', obj(2, 0, welcome, b'welcome.txt', 4, True, 0, [5, 0, 1, 1, 2, 3, 4], 0)
  + obj(3, 0, welcome, b'welcome.txt', 4, True, 0, None, 4))
w('carousel_frame', 'patched-raw', crec(1, 1, b'RDGC\x01\x01\x00\x00' + bytes(16) + struct.pack('>I', 1) + bytes(8) + b'xy'))

# group_config
for f in ('infocast', 'minimal', 'demo'):
    text = open(f'{ROOT}/examples/{f}.yaml').read()
    w('group_config', f'{f}.yaml', b'\x00' + text.encode())
    w('group_config', f'{f}.json', b'\x01' + json.dumps(yaml.safe_load(text)).encode())

# crd_spec
for f in ('two-member', 'three-member-two-networks', 'gated-transmitter'):
    for d in yaml.safe_load_all(open(f'{ROOT}/manifests/examples/{f}.yaml')):
        if d and d.get('kind') == 'RedundantGroup':
            w('crd_spec', f'{f}.json', json.dumps(d['spec'], indent=1))

# role_file (as role_file::write writes it)
w('role_file', 'hot', '{"member":"ics-a","role":"HS","epoch":3,"leaseUntilMonotonicMs":123456789}\n')
w('role_file', 'standby', '{"member":"ics-b","role":"SBS","epoch":3,"leaseUntilMonotonicMs":0}\n')

# status_reply
w('status_reply', 'reply-datagram', b'\x00' + enc(kind=6, state=0, member=b'ics-a', hot=b'ics-a', group=b'g'))
w('status_reply', 'reply-datagram-signed', b'\x00' + enc(kind=6, state=1, member=b'ics-b', hot=b'ics-a', key=b'fuzz-key'))
gs = {"group": "infocast", "hot": "ics-a", "epoch": 4, "splitBrain": False, "missing": ["ics-c"],
      "members": [{"name": "ics-a", "state": "HS", "temporal": "iNone", "priority": 100, "epoch": 4, "hot": "ics-a", "netCheckOk": True, "address": "10.0.0.11"},
                  {"name": "ics-b", "state": "SBS", "temporal": "iNone", "priority": 50, "epoch": 4, "hot": "ics-a", "netCheckOk": True, "address": "fe80::1"}]}
w('status_reply', 'group-status.json', b'\x01' + json.dumps(gs).encode())
def net(n, healthy=True): return {"name": n, "healthy": healthy, "lastHeardMsAgo": 40, "anomaly": not healthy, "address": None}
sr = {"group": "infocast", "member": "ics-b", "state": "SBS", "temporal": "iNone", "epoch": 4, "hot": "ics-a", "priority": 50, "leaseRemainingMs": None,
      "netCheck": {"enabled": True, "ok": True, "targets": ["10.0.0.1"]},
      "networks": [{"name": "primary", "address": "10.0.0.12", "multicast": None}, {"name": "secondary", "address": "192.168.0.12", "multicast": "239.1.2.3"}],
      "members": [{"name": "ics-a", "self": False, "state": "HS", "temporal": "iNone", "priority": 100, "epoch": 4, "netCheckOk": True, "alive": True, "networks": [net("primary"), net("secondary", False)]},
                  {"name": "ics-b", "self": True, "state": "SBS", "temporal": "iNone", "priority": 50, "epoch": 4, "netCheckOk": True, "alive": True, "networks": []}],
      "vips": [{"address": "10.0.0.100/24", "interface": "eth0", "held": False, "error": None}]}
w('status_reply', 'agent-status.json', b'\x02' + json.dumps(sr).encode())
