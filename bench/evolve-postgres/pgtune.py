#!/usr/bin/python3
"""pgtune.py: PGTune's recommendation for this machine, as a conf file.

PGTune (https://pgtune.leopard.in.ua, github.com/le0pard/pgtune) computes a
postgresql.conf from the database version, OS, application type, total RAM,
CPU count, connection count and storage type. These are its published rules,
written here FROM MEMORY of its source (src/features/configuration/...
selectors), not copied; where memory is unsure the comment says so. Inputs:
PostgreSQL 15, Linux, the application type (default "oltp": pgbench's
tpcb-like and select-only are short transactions, PGTune's "Online
transaction processing system"; "mixed" is also accepted), RAM and CPUs as
this process sees them (the cgroup's memory limit and CPU quota when lower
than the machine's), SSD storage (the bench's virtual disk; PGTune's "ssd"),
max_connections left to PGTune's default for the type.

    pgtune.py [--type oltp|mixed|web|dw|desktop] [--ram-mb N] [--cpus N] [--storage ssd|hdd|san]

Prints "key = value" lines (with the inputs in a comment) on stdout.
"""
import argparse
import math
import os

KB = 1
MB = 1024 * KB
GB = 1024 * MB


def machine_ram_kb():
    """MemTotal, or the cgroup's memory limit when lower (v2, then v1)."""
    with open("/proc/meminfo") as f:
        ram = next(int(l.split()[1]) for l in f if l.startswith("MemTotal:"))
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                v = f.read().strip()
        except OSError:
            continue
        if v.isdigit():
            ram = min(ram, int(v) // 1024)
    return ram


def machine_cpus():
    """CPUs this process may run on, or the cgroup's CPU quota when lower."""
    n = len(os.sched_getaffinity(0))
    quota = None
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            q, p = f.read().split()
            if q != "max":
                quota = int(q) / int(p)
    except (OSError, ValueError):
        try:
            with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
                q = int(f.read())
            with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
                p = int(f.read())
            if q > 0:
                quota = q / p
        except (OSError, ValueError):
            pass
    if quota:
        n = min(n, max(1, math.ceil(quota)))
    return n


def fmt_kb(v):
    """PGTune writes sizes in the largest unit that divides them exactly."""
    v = int(v)
    if v % GB == 0:
        return "%dGB" % (v // GB)
    if v % MB == 0:
        return "%dMB" % (v // MB)
    return "%dkB" % v


def pgtune(app, ram_kb, cpus, storage):
    """The rules (PostgreSQL >= 14 on Linux), returned as ordered pairs."""
    out = []
    # max_connections: the type's default (web 200, oltp 300, dw 40,
    # desktop 20, mixed 100) when the user gives none.
    conns = {"web": 200, "oltp": 300, "dw": 40, "desktop": 20, "mixed": 100}[app]
    out.append(("max_connections", str(conns)))
    # shared_buffers: RAM/4 (desktop: RAM/16).
    sb = ram_kb // 16 if app == "desktop" else ram_kb // 4
    out.append(("shared_buffers", fmt_kb(sb)))
    # effective_cache_size: RAM*3/4 (desktop: RAM/4).
    ecs = ram_kb // 4 if app == "desktop" else ram_kb * 3 // 4
    out.append(("effective_cache_size", fmt_kb(ecs)))
    # maintenance_work_mem: RAM/16 (dw: RAM/8), capped at 2GB.
    mwm = ram_kb // 8 if app == "dw" else ram_kb // 16
    out.append(("maintenance_work_mem", fmt_kb(min(mwm, 2 * GB))))
    # checkpoint_completion_target: 0.9 for every type (newer PGTune).
    out.append(("checkpoint_completion_target", "0.9"))
    # wal_buffers: 3% of shared_buffers, at most 16MB; a value within 2MB
    # below 16MB is rounded up to 16MB; at least 32kB.
    wb = sb * 3 // 100
    if wb > 16 * MB:
        wb = 16 * MB
    elif 14 * MB < wb < 16 * MB:
        wb = 16 * MB
    wb = max(wb, 32)
    out.append(("wal_buffers", fmt_kb(wb)))
    # default_statistics_target: 100 (dw: 500).
    out.append(("default_statistics_target", "500" if app == "dw" else "100"))
    # random_page_cost: hdd 4, ssd and san 1.1.
    out.append(("random_page_cost", "4" if storage == "hdd" else "1.1"))
    # effective_io_concurrency (Linux only): hdd 2, ssd 200, san 300.
    out.append(("effective_io_concurrency", {"hdd": "2", "ssd": "200", "san": "300"}[storage]))
    # Parallel settings only from 4 CPUs on: max_worker_processes = CPUs,
    # max_parallel_workers_per_gather = ceil(CPUs/2) (at most 4 unless dw),
    # max_parallel_workers = CPUs, max_parallel_maintenance_workers =
    # ceil(CPUs/2) at most 4. Below 4 CPUs PGTune writes none of them.
    workers_per_gather = 0
    if cpus >= 4:
        workers_per_gather = math.ceil(cpus / 2)
        if app != "dw":
            workers_per_gather = min(workers_per_gather, 4)
        out.append(("max_worker_processes", str(cpus)))
        out.append(("max_parallel_workers_per_gather", str(workers_per_gather)))
        out.append(("max_parallel_workers", str(cpus)))
        out.append(("max_parallel_maintenance_workers", str(min(math.ceil(cpus / 2), 4))))
    # work_mem = (RAM - shared_buffers) / (max_connections * 3) / the
    # parallel factor (workers per gather when set, else 1); web and oltp
    # take it as is, dw and mixed halve it, desktop divides by 6; at least
    # 64kB. (From memory: some PGTune versions add max_worker_processes to
    # max_connections in the divisor; with no parallel settings here the
    # difference would be 8 of 300 connections.)
    parallel = workers_per_gather if workers_per_gather > 0 else 1
    wm = (ram_kb - sb) / (conns * 3) / parallel
    wm = {"web": wm, "oltp": wm, "dw": wm / 2, "desktop": wm / 6, "mixed": wm / 2}[app]
    out.append(("work_mem", fmt_kb(max(64, math.floor(wm)))))
    # huge_pages: "try" from 32GB of RAM on, else "off".
    out.append(("huge_pages", "try" if ram_kb >= 32 * GB else "off"))
    # min_wal_size / max_wal_size by type: web 1GB/4GB, oltp 2GB/8GB,
    # dw 4GB/16GB, desktop 100MB/2GB, mixed 1GB/4GB.
    wal = {"web": (1 * GB, 4 * GB), "oltp": (2 * GB, 8 * GB), "dw": (4 * GB, 16 * GB),
           "desktop": (100 * MB, 2 * GB), "mixed": (1 * GB, 4 * GB)}[app]
    out.append(("min_wal_size", fmt_kb(wal[0])))
    out.append(("max_wal_size", fmt_kb(wal[1])))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--type", default="oltp", choices=["web", "oltp", "dw", "desktop", "mixed"])
    ap.add_argument("--ram-mb", type=int, help="total RAM (default: this machine's, or its cgroup limit)")
    ap.add_argument("--cpus", type=int, help="CPUs (default: this machine's, or its cgroup quota)")
    ap.add_argument("--storage", default="ssd", choices=["ssd", "hdd", "san"])
    a = ap.parse_args()
    ram_kb = a.ram_mb * MB if a.ram_mb else machine_ram_kb()
    cpus = a.cpus or machine_cpus()
    print("# PGTune (rules from memory of its source), PostgreSQL 15, Linux, type %s, RAM %d MB, %d CPUs, %s"
          % (a.type, ram_kb // MB, cpus, a.storage))
    for k, v in pgtune(a.type, ram_kb, cpus, a.storage):
        print("%s = %s" % (k, v))


if __name__ == "__main__":
    main()
