"""Allocation-heavy, fully deterministic Python workload for hz3's LD_PRELOAD tests.

Run it with and without the allocator preloaded (PYTHONHASHSEED=0 in both
cases): stdout must be identical.  It builds and tears down dicts, lists,
sets, strings, bytes, tuples, nested JSON documents, sorts, and a few
object graphs with cycles (so the cyclic GC runs), then prints one line per
stage and a final digest.

If HZ3_EXPECT_LIB is set, the script first checks that a mapping whose path
contains that name is present in /proc/self/maps (so a run where the
preload silently did not happen fails), and exits 3 if not.  It prints
nothing about it, so the output stays comparable.
"""
import gc
import hashlib
import json
import os
import random
import sys
import threading
from collections import Counter, OrderedDict, defaultdict, deque

SCALE = int(os.environ.get("HZ3_PY_SCALE", "1"))


def check_loaded():
    want = os.environ.get("HZ3_EXPECT_LIB")
    if not want:
        return
    with open("/proc/self/maps") as f:
        if want not in f.read():
            sys.stderr.write("alloc_heavy.py: %s is not mapped: preload not applied\n" % want)
            sys.exit(3)


DIGEST = hashlib.sha256()


def emit(name, value):
    line = "%s %s" % (name, value)
    DIGEST.update(line.encode())
    print(line)


def stage_dicts(rng):
    d = {}
    for i in range(120000 * SCALE):
        k = "k%d_%d" % (rng.randrange(50000), i % 7)
        d.setdefault(k, []).append(i)
        if i % 5 == 0:
            d.pop("k%d_%d" % (rng.randrange(50000), rng.randrange(7)), None)
    sizes = sorted(len(v) for v in d.values())
    emit("dicts", "%d %d %d" % (len(d), sum(sizes), sizes[len(sizes) // 2]))


def stage_strings(rng):
    words = ["".join(chr(97 + rng.randrange(26)) for _ in range(rng.randrange(1, 14))) for _ in range(40000)]
    text = " ".join(words)
    parts = text.split(" ")
    joined = "-".join(reversed(parts)).upper()
    c = Counter(w[:2] for w in parts)
    big = []
    for i in range(2000):
        big.append(joined[i * 10 : i * 10 + 5000] * 3)
    emit("strings", "%d %d %s %d" % (len(joined), len(c), c.most_common(3), sum(map(len, big))))
    b = bytearray()
    for w in words:
        b += w.encode() * 3
        if len(b) > 1 << 20:
            del b[: len(b) // 2]
    emit("bytes", "%d %s" % (len(b), hashlib.sha256(bytes(b)).hexdigest()[:16]))


def stage_json(rng):
    def doc(depth):
        if depth == 0:
            r = rng.random()
            if r < 0.3:
                return rng.randrange(-10**9, 10**9)
            if r < 0.6:
                return "s" * rng.randrange(0, 300)
            if r < 0.8:
                return round(rng.random() * 1000, 6)
            return None
        if rng.random() < 0.5:
            return [doc(depth - 1) for _ in range(rng.randrange(0, 8))]
        return {"f%d" % j: doc(depth - 1) for j in range(rng.randrange(0, 8))}

    total = 0
    h = hashlib.sha256()
    for i in range(60 * SCALE):
        d = doc(5)
        s = json.dumps(d, sort_keys=True)
        back = json.loads(s)
        assert back == d, "json round trip changed the document"
        s2 = json.dumps(back, sort_keys=True, indent=1)
        total += len(s) + len(s2)
        h.update(s.encode())
    emit("json", "%d %s" % (total, h.hexdigest()[:16]))


def stage_sort(rng):
    nums = [rng.randrange(10**12) for _ in range(300000 * SCALE)]
    tuples = [(n % 1000, str(n), n) for n in nums[:150000]]
    nums.sort()
    tuples.sort(key=lambda t: (t[0], t[1]))
    strs = sorted(str(n) for n in nums[::3])
    emit("sort", "%d %d %s %s" % (nums[0], nums[-1], tuples[777][1], strs[1234]))


class Node:
    __slots__ = ("val", "kids", "parent", "__weakref__")

    def __init__(self, val, parent=None):
        self.val = val
        self.kids = []
        self.parent = parent


def stage_graph(rng):
    total = 0
    for round_ in range(8):
        root = Node(0)
        nodes = [root]
        for i in range(1, 40000):
            p = nodes[rng.randrange(len(nodes))]
            n = Node(i, p)
            p.kids.append(n)
            nodes.append(n)
        # cycles for the collector
        for i in range(0, len(nodes), 97):
            nodes[i].kids.append(nodes[rng.randrange(len(nodes))])
        stack, seen = [root], set()
        while stack:
            n = stack.pop()
            if id(n) in seen:
                continue
            seen.add(id(n))
            total += n.val
            stack.extend(n.kids)
        del nodes, root, stack, seen
        gc.collect()
    emit("graph", total)


def stage_misc(rng):
    od = OrderedDict()
    dd = defaultdict(list)
    dq = deque(maxlen=5000)
    st = set()
    for i in range(200000 * SCALE):
        k = rng.randrange(20000)
        od[k] = i
        od.move_to_end(k, last=bool(i & 1))
        if len(od) > 10000:
            od.popitem(last=False)
        dd[k % 333].append((k, i))
        dq.append(str(i) * (i % 5))
        st.add(frozenset((k, k % 17)))
        if len(st) > 30000:
            st.clear()
    emit("misc", "%d %d %d %d" % (len(od), sum(len(v) for v in dd.values()), len(dq), len(st)))


def stage_threads():
    # several threads allocating at once (the GIL still switches often)
    results = [None] * 4

    def work(i):
        r = random.Random(1000 + i)
        acc = []
        for j in range(30000):
            acc.append({"i": j, "s": "x" * r.randrange(100)})
            if len(acc) > 2000:
                acc = acc[1000:]
        results[i] = sum(len(a["s"]) for a in acc)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    emit("threads", results)


def main():
    check_loaded()
    rng = random.Random(12345)
    stage_dicts(rng)
    stage_strings(rng)
    stage_json(rng)
    stage_sort(rng)
    stage_graph(rng)
    stage_misc(rng)
    stage_threads()
    print("digest", DIGEST.hexdigest())


if __name__ == "__main__":
    main()
