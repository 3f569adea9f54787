#!/usr/bin/env python3
"""Writes the seed inputs of the alloc_model fuzz target (deterministic).

Each seed is a program in the target's input format (see
fuzz_targets/alloc_model.rs): an opcode byte (op % 20), a slot byte, then the
operands of that step. Run from hz3/fuzz: python3 make_seeds.py (writes seeds/)
"""
import random
import struct

def size_tiny(n):        # selector 0: u16 % 1025
    return bytes([0]) + struct.pack('<H', n)

def size_edge(idx, d):   # selector 5: class boundary idx, delta d-2
    return bytes([5, idx, d])

def size_mid(n):         # selector 9: 1025 + u32 % (256K - 1024)
    return bytes([9]) + struct.pack('<I', n)

def size_large(n):       # selector 13: 256K + u32 % (6M - 256K)
    return bytes([13]) + struct.pack('<I', n)

def size_limit(k):       # selector 12: 256K - 32 + k % 64
    return bytes([12, k])

def malloc(slot, sz): return bytes([0, slot]) + sz
def calloc(slot, sz, k): return bytes([4, slot]) + sz + bytes([k])
def aligned(slot, a, sz): return bytes([5, slot, a]) + sz
def posix(slot, a, sz, page): return bytes([7, slot, a]) + sz + bytes([page])
def realloc(slot, sz): return bytes([8, slot]) + sz
def free(slot, kind=0): return bytes([11, slot, kind])
def check(slot): return bytes([13, slot])
def remote_free(slot): return bytes([14, slot])
def remote_alloc(slot, sz, kind, a=4): return bytes([15, slot]) + sz + bytes([kind, a])
def huge(slot, sel, arg, kind): return bytes([16, slot, sel, arg, arg, kind, 3, 7])
def respawn(): return bytes([17, 0, 0])
def trim(): return bytes([18, 0, 0])
def burst(n, k): return bytes([19, 0]) + struct.pack('<H', n) + bytes([k])

seeds = {}
# every class boundary, +-2, then free in another order
p = b''
for i in range(128):
    p += malloc(i % 64, size_edge(i, i % 5))
    if i % 3 == 0:
        p += free((i * 7) % 64, i % 3)
seeds['boundaries'] = p
# a realloc chain across tiny, medium, the small/large limit and large
p = malloc(1, size_tiny(1))
for sz in [size_tiny(17), size_tiny(1024), size_mid(3000), size_mid(70000),
           size_limit(31), size_limit(33), size_large(1 << 20), size_tiny(5),
           size_large(5 << 20), size_mid(200000), size_tiny(0)]:
    p += realloc(1, sz) + check(1)
seeds['realloc_chain'] = p
# aligned allocations of every alignment, small and large
p = b''
for a in range(17):
    p += aligned(a, a, size_tiny(a * 60)) + posix(a + 20, a, size_mid(a * 9000), a & 1)
    p += aligned(a + 40, a, size_large(a * 100000))
p += b''.join(free(s) for s in range(64))
seeds['aligned'] = p
# other threads: remote frees, remote allocations, thread exit
p = b''
for i in range(40):
    p += malloc(i, size_tiny(16 * i)) + remote_free(i)
    p += remote_alloc(i + 1, size_mid(i * 1000), i % 3, i % 17)
    if i % 10 == 9:
        p += respawn()
seeds['remote'] = p
# calloc after dirtying, huge requests, trim, bursts
p = b''
for i in range(20):
    p += malloc(i, size_tiny(64 * i)) + free(i) + calloc(i, size_tiny(64 * i), 1 + i % 4)
    p += calloc(i + 30, size_large(i * 50000), 1) + free(i + 30)
    p += calloc(i + 40, size_large(i * 50000), 2)
    p += huge(i, i % 4, i, i % 5)
p += trim() + burst(48, 150) + burst(2048, 40) + burst(0, 199)
seeds['calloc_huge_burst'] = p
# random programs of a few lengths
rng = random.Random(2026)
for n in [64, 512, 1024]:
    seeds[f'random_{n}'] = bytes(rng.randrange(256) for _ in range(n))

for name, data in seeds.items():
    with open('seeds/' + name, 'wb') as f:
        f.write(data[:4096])
print(f'wrote {len(seeds)} seeds')
