"""A deterministic, allocation-heavy Python program for bench-matrix/tracer/record.sh.

Run with PYTHONHASHSEED=0 and PYTHONMALLOC=malloc (so every object goes
through malloc, not pymalloc's arenas). No randomness that is not seeded, no
clock, no I/O except one summary line: the same run allocates the same sizes in
the same order every time.

Phases, each a common shape of real Python programs:
  1. tokenize and count words of a generated text (str split, dict counting);
  2. build records (dicts of str/int/list), JSON encode and decode them;
  3. sort and group records, build strings by join and by repeated +=;
  4. a small object graph (class instances with __dict__), built and dropped
     in waves, so lifetimes overlap;
  5. growing and shrinking lists and bytearrays (realloc traffic).
"""

import json
import random

rng = random.Random(20240613)

WORDS = [
    "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 12)))
    for _ in range(2000)
]


def phase_words():
    text = " ".join(rng.choice(WORDS) for _ in range(60000))
    counts = {}
    for w in text.split():
        counts[w] = counts.get(w, 0) + 1
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:50]
    return sum(c for _, c in top)


def phase_json():
    records = []
    for i in range(6000):
        records.append(
            {
                "id": i,
                "name": rng.choice(WORDS) + "-" + str(i),
                "tags": [rng.choice(WORDS) for _ in range(rng.randint(0, 8))],
                "score": rng.random() * 100.0,
                "nested": {"a": i * 3, "b": str(i) * rng.randint(1, 20)},
            }
        )
    blob = json.dumps(records)
    back = json.loads(blob)
    return len(blob) + len(back)


def phase_sort_group():
    rows = [(rng.choice(WORDS), rng.randint(0, 1000), str(rng.random())) for _ in range(40000)]
    rows.sort()
    groups = {}
    for k, v, s in rows:
        groups.setdefault(k, []).append((v, s))
    out = []
    for k in sorted(groups):
        out.append(k + ":" + ",".join(str(v) for v, _ in groups[k][:5]))
    acc = ""
    for line in out[:800]:
        acc += line + "\n"
    return len("\n".join(out)) + len(acc)


class Node:
    def __init__(self, name, parent):
        self.name = name
        self.parent = parent
        self.children = []
        self.payload = [name] * (len(name) % 7)


def phase_graph():
    total = 0
    keep = []
    for wave in range(12):
        root = Node("root%d" % wave, None)
        frontier = [root]
        n = 0
        while frontier and n < 3000:
            node = frontier.pop(0)
            for j in range(rng.randint(1, 4)):
                child = Node(node.name + "/" + str(j), node)
                node.children.append(child)
                frontier.append(child)
                n += 1
        total += n
        keep.append(root)
        if len(keep) > 3:
            keep.pop(0)  # an old wave dies while newer ones live
    return total


def phase_grow():
    total = 0
    for round_ in range(200):
        lst = []
        for i in range(rng.randint(100, 3000)):
            lst.append(i)
        ba = bytearray()
        for i in range(rng.randint(10, 400)):
            ba += bytes(rng.randint(1, 200))
        while len(lst) > 10:
            del lst[len(lst) // 2 :]
        total += len(lst) + len(ba)
    return total


def main():
    r = [phase_words(), phase_json(), phase_sort_group(), phase_graph(), phase_grow()]
    print("alloc_heavy:", " ".join(str(x) for x in r))


main()
