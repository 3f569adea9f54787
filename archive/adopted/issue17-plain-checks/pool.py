import json, math, sys
for lane in ['fast','scale']:
    cells={}
    for i in (1,2,3):
        d=json.load(open(f'archive/adopted/issue17-plain-checks/{lane}-{i}/ab.json'))
        for c in d['cells']:
            cells.setdefault((c['workload'],c['threads']),[]).append(c['delta'])
    print(f"## {lane}: per-cell delta (B/A-1) in the 3 A/B runs, and their geometric mean")
    print("| workload | threads | run 1 | run 2 | run 3 | mean |")
    print("|---|---:|---:|---:|---:|---:|")
    allg=[]
    for t in (1,8):
        g=[]
        for (w,th),v in cells.items():
            if th!=t: continue
            m=math.exp(sum(math.log(1+x) for x in v)/len(v))-1
            g.append(math.log(1+m)); allg.append(math.log(1+m))
            print(f"| {w} | {th} | "+" | ".join(f"{x*100:+.1f}%" for x in v)+f" | {m*100:+.1f}% |")
        print(f"| **geomean {t} thread(s)** | {t} | | | | **{(math.exp(sum(g)/len(g))-1)*100:+.2f}%** |")
    print(f"| **geomean all** | | | | | **{(math.exp(sum(allg)/len(allg))-1)*100:+.2f}%** |\n")
