#!/usr/bin/env python3
"""Groups `perf script` samples of the seeder by what their call chain is doing."""
import collections, sys
cats = collections.Counter(); total = 0
def classify(frames, comm):
    s = " ".join(frames)
    if "libcrypto" in s or "sha1" in s.lower(): return "start-up check: SHA-1"
    if "__x64_sys_pread64" in s or "vfs_read" in s: return "start-up check: pread of the payload"
    if "__io_read" in s or "io_read" in frames[:6]: return "serving: disk read into the read cache (page-cache copy)"
    if "memmove" in s or "memcpy" in s or "memset" in s: return "serving: copy of the block into the engine's send buffer (memset+memmove)"
    if "tcp_sendmsg" in s or "io_send" in s or "io_sendmsg" in s or "tcp_write_xmit" in s or "__tcp_push" in s: return "serving: socket send (user->skb copy, TCP, loopback delivery)"
    if "tcp_recvmsg" in s or "io_recv" in s: return "receiving requests"
    if "io_submit_sqes" in s or "io_uring" in s or "io_cqring" in s: return "io_uring submit/complete (other)"
    if frames and "[kernel" in frames[0]: return "other kernel (scheduling, interrupts, faults)"
    return "Torrenty's own code and other user space"
cur = []; comm = None
for line in sys.stdin:
    line = line.rstrip("\n")
    if not line.strip():
        if cur:
            cats[classify(cur, comm)] += 1; total += 1
        cur = []; comm = None; continue
    if line[0] not in " \t":
        comm = line.split()[0]; continue
    parts = line.strip().split(None, 1)
    if len(parts) == 2: cur.append(parts[1])
if cur: cats[classify(cur, comm)] += 1; total += 1
print("| where | share of samples |\n|---|--:|")
for k, v in cats.most_common(): print("| %s | %.1f%% |" % (k, 100.0 * v / total))
print("samples:", total)
