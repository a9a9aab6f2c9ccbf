#!/usr/bin/env python3
"""Interleaved `torrenty bench --json` runs of several binaries; prints medians."""
import json, os, statistics, subprocess, sys
reps = int(sys.argv[1]); size = sys.argv[2]; variants = sys.argv[3:]  # name=binary[:ENV=V]
rows = {v: [] for v in variants}
for r in range(reps):
    for v in variants:
        name, spec = v.split("=", 1)
        binary, *envs = spec.split(":")
        env = dict(os.environ)
        for e in envs:
            k, val = e.split("=", 1); env[k] = val
        out = subprocess.run([binary, "bench", "--size", size, "--seeders", "1", "--json"],
                             capture_output=True, text=True, env=env, timeout=300)
        if out.returncode != 0:
            print("FAIL", v, out.stderr[-500:]); continue
        j = json.loads(out.stdout.strip().splitlines()[-1])
        rows[v].append(j)
        print(r, name, "MB/s %.0f leech %.2f seed %.2f serving %.2f" % (
            j["mb_per_s"], j["leecher_cpu_s_per_gib"], j["seeder_cpu_s_per_gib"],
            j.get("seeder_serving_cpu_s_per_gib", float("nan"))), flush=True)
print("| variant | runs | MB/s | leecher CPU s/GiB | seeder CPU s/GiB (lifetime) | seeder CPU s/GiB while serving |")
print("|---|--:|--:|--:|--:|--:|")
for v in variants:
    js = rows[v]
    if not js: continue
    med = lambda k: statistics.median(j.get(k, float("nan")) for j in js)
    print("| %s | %d | %.0f | %.2f | %.2f | %.2f |" % (v.split("=")[0], len(js), med("mb_per_s"),
          med("leecher_cpu_s_per_gib"), med("seeder_cpu_s_per_gib"), med("seeder_serving_cpu_s_per_gib")))
