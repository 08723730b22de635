/* gpu.c: the `gpu` group: NVIDIA GPUs through NVML, loaded with dlopen() of
 * [sense] nvml_library (default libnvidia-ml.so.1) at start, so building and
 * running need nothing from NVIDIA. Per GPU (label gpu = NVML index):
 * utilisation, memory, temperature, power and its limit, SM and memory
 * clocks, PCIe throughput (every GPU_PCIE_EVERY runs: NVML waits 20 ms for
 * it), volatile ECC error counts, XID errors (from an
 * NVML event set polled with a zero timeout: the loop never blocks on it),
 * throttle reasons, and the compute processes using it with their memory
 * (the largest GPU_MAX_PROCS; at most GPU_PROC_SERIES such series per GPU
 * over ippocd's life, so job churn cannot grow memory without bound).
 * gpu.info carries each GPU's UUID, model name, device node and PCI bus id
 * for the /metrics renderer (src/api/prom_gpu.c).
 *
 * No library, no driver or no GPU: reported once (log and collector note),
 * then nothing else. A query a GPU does not support (NVML_ERROR_NOT_SUPPORTED)
 * is logged once and not asked again; other failed queries are logged once
 * and leave that series out for the tick. */
#include "sense/sense_int.h"
#include "sense/nvml.h"

#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GPU_MAX 64          /* GPUs watched */
#define GPU_MAX_PROCS 16    /* process series per GPU per tick, largest memory first */
#define GPU_PROC_BUF 256    /* process entries asked of NVML per GPU at first */
#define GPU_PROC_BUF_MAX 65536 /* ... grown up to this when a GPU has more */
#define GPU_PROC_CACHE 32   /* remembered pid -> series per GPU */
#define GPU_PROC_SERIES 256 /* process series one GPU may create in ippocd's life */
#define GPU_EVENTS_TICK 64  /* events drained per tick at most */
/* NVML samples PCIe throughput for 20 ms inside the call (twice: TX, RX), on
 * the loop thread: each GPU is asked every GPU_PCIE_EVERY runs, GPUs in
 * turn, so a run waits 40 ms at most with up to that many GPUs. */
#define GPU_PCIE_EVERY 10

enum { G_UTIL, G_MEMUTIL, G_MEM_USED, G_MEM_FREE, G_MEM_TOTAL, G_TEMP, G_POWER, G_POWER_LIMIT,
       G_SM_CLOCK, G_MEM_CLOCK, G_PCIE_TX, G_PCIE_RX, G_ECC_CORR, G_ECC_UNCORR, G_XID, G_LAST_XID,
       G_THROTTLE, G_PROCS, G_INFO, G_N };

static const struct {
    const char *name, *unit, *help, *what;
    const char *type; /* the value of label "type", or NULL */
} gdefs[G_N] = {
    {"gpu.utilization_percent", "percent", "share of time a kernel ran on the GPU", "utilization", NULL},
    {"gpu.memory_utilization_percent", "percent", "share of time device memory was read or written",
     "utilization", NULL},
    {"gpu.memory_used_bytes", "bytes", "device memory in use", "memory", NULL},
    {"gpu.memory_free_bytes", "bytes", "device memory free", "memory", NULL},
    {"gpu.memory_total_bytes", "bytes", "device memory installed", "memory", NULL},
    {"gpu.temperature", "celsius", "GPU core temperature", "temperature", NULL},
    {"gpu.power_watts", "watts", "power drawn by the board", "power", NULL},
    {"gpu.power_limit_watts", "watts", "power limit enforced by the driver", "power limit", NULL},
    {"gpu.sm_clock_hz", "hz", "SM (streaming multiprocessor) clock", "SM clock", NULL},
    {"gpu.memory_clock_hz", "hz", "memory clock", "memory clock", NULL},
    {"gpu.pcie_tx_bytes_per_second", "bytes/s", "PCIe bytes sent per second (NVML's 20 ms sample)",
     "PCIe TX", NULL},
    {"gpu.pcie_rx_bytes_per_second", "bytes/s", "PCIe bytes received per second (NVML's 20 ms sample)",
     "PCIe RX", NULL},
    {"gpu.ecc_errors", "", "volatile ECC errors since the driver loaded", "corrected ECC errors", "corrected"},
    {"gpu.ecc_errors", "", "volatile ECC errors since the driver loaded", "uncorrected ECC errors",
     "uncorrected"},
    {"gpu.xid_errors", "", "XID errors seen since ippocd started", "XID events", NULL},
    {"gpu.last_xid", "", "the last XID error seen since ippocd started (0: none)", "XID events", NULL},
    {"gpu.throttle_reasons", "", "clock throttle reasons (NVML bitmask; 0: none)", "throttle reasons", NULL},
    {"gpu.processes", "", "compute processes using the GPU", "processes", NULL},
    {"gpu.info", "", "one per GPU, labelled with its UUID, model name and device node", "name", NULL},
};

typedef struct gpu_proc {
    unsigned int pid;   /* 0: free slot */
    int id;             /* its gpu.process_memory_bytes series */
    uint32_t gen;       /* run it was last put in */
} gpu_proc;

typedef struct gpu_dev {
    nvmlDevice_t h;
    char idx[12];       /* NVML index, the gpu label */
    char labels[64];    /* gpu="N" */
    int ids[G_N];
    bool unsup[G_N];    /* NVML said NOT_SUPPORTED: not asked again */
    bool logged[G_N];   /* a failure of this query was logged */
    bool xid;           /* XID events registered */
    uint64_t xid_count;
    unsigned long long last_xid;
    gpu_proc procs[GPU_PROC_CACHE];
    int nproc_series;   /* process series created so far */
    bool proc_capped;   /* GPU_PROC_SERIES reached (logged) */
} gpu_dev;

typedef struct gpu_priv {
    sn_nvml n;
    char lib[CORE_PATH_MAX]; /* the nvml_library loaded (or tried) at start */
    bool inited;             /* nvmlInit_v2 succeeded: nvmlShutdown at the end */
    bool dead;               /* no library, driver or GPU: nothing to do */
    bool deferred;           /* disabled at start: set up on the first run */
    nvmlEventSet_t events;
    int ndev;
    gpu_dev *dev;
    nvmlProcessInfo_t *pbuf; /* pcap entries */
    unsigned int pcap;
} gpu_priv;

/* Looks up the functions: the five without which nothing works are
 * required (false with the missing name in why); a missing other one leaves
 * its series out (gpu_dev_unsup), logged once. The throttle reasons are
 * asked under their newer name first (nvmlDeviceGetCurrentClocksEventReasons,
 * same signature) so a driver that drops the deprecated one still answers. */
static bool gpu_syms(sn_nvml *n, char *why, size_t wn)
{
    static const struct { const char *sym, *alt; size_t off; bool required; } syms[] = {
#define R(f) {"nvml" #f, NULL, offsetof(sn_nvml, f), true}
#define O(f) {"nvml" #f, NULL, offsetof(sn_nvml, f), false}
        R(Init_v2), R(Shutdown), R(ErrorString), R(DeviceGetCount_v2), R(DeviceGetHandleByIndex_v2),
        O(DeviceGetName), O(DeviceGetUUID), O(DeviceGetMinorNumber), O(DeviceGetPciInfo_v3),
        O(DeviceGetUtilizationRates),
        O(DeviceGetMemoryInfo), O(DeviceGetTemperature), O(DeviceGetPowerUsage),
        O(DeviceGetEnforcedPowerLimit), O(DeviceGetClockInfo), O(DeviceGetPcieThroughput),
        O(DeviceGetTotalEccErrors),
        {"nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons",
         offsetof(sn_nvml, DeviceGetCurrentClocksThrottleReasons), false},
        O(DeviceGetComputeRunningProcesses_v3), O(EventSetCreate), O(DeviceRegisterEvents),
        O(EventSetWait_v2), O(EventSetFree),
#undef R
#undef O
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *f = dlsym(n->dl, syms[i].sym);
        if (!f && syms[i].alt)
            f = dlsym(n->dl, syms[i].alt);
        if (!f && syms[i].required) {
            snprintf(why, wn, "the NVML library has no %s (not NVML, or a driver too old)", syms[i].sym);
            return false;
        }
        if (!f)
            log_info("sense: gpu: the NVML library has no %s: its series are left out", syms[i].sym);
        memcpy((char *)n + syms[i].off, &f, sizeof f);
    }
    return true;
}

/* Marks the queries whose function the library lacks as unsupported. */
static void gpu_dev_unsup(const sn_nvml *n, gpu_dev *d)
{
    d->unsup[G_UTIL] = !n->DeviceGetUtilizationRates;
    d->unsup[G_MEM_USED] = !n->DeviceGetMemoryInfo;
    d->unsup[G_TEMP] = !n->DeviceGetTemperature;
    d->unsup[G_POWER] = !n->DeviceGetPowerUsage;
    d->unsup[G_POWER_LIMIT] = !n->DeviceGetEnforcedPowerLimit;
    d->unsup[G_SM_CLOCK] = d->unsup[G_MEM_CLOCK] = !n->DeviceGetClockInfo;
    d->unsup[G_PCIE_TX] = d->unsup[G_PCIE_RX] = !n->DeviceGetPcieThroughput;
    d->unsup[G_ECC_CORR] = d->unsup[G_ECC_UNCORR] = !n->DeviceGetTotalEccErrors;
    d->unsup[G_THROTTLE] = !n->DeviceGetCurrentClocksThrottleReasons;
    d->unsup[G_PROCS] = !n->DeviceGetComputeRunningProcesses_v3;
}

static const char *gpu_err(gpu_priv *p, nvmlReturn_t r)
{
    const char *m = p->n.ErrorString ? p->n.ErrorString(r) : NULL;
    return m ? m : "unknown NVML error";
}

/* The series' labels: gpu="N" plus type for ECC. */
static int gpu_series(sense_t *s, gpu_dev *d, int k)
{
    if (d->ids[k] >= 0)
        return d->ids[k];
    char lab[160];
    if (gdefs[k].type)
        sn_labels(lab, sizeof lab, 2, "gpu", d->idx, "type", gdefs[k].type);
    else
        core_sncpy(lab, sizeof lab, d->labels);
    d->ids[k] = sn_series(s, gdefs[k].name, lab, gdefs[k].unit, gdefs[k].help,
                          k == G_PCIE_TX || k == G_PCIE_RX ? MEM_RATE : MEM_GAUGE);
    return d->ids[k];
}

/* true when r is success; otherwise notes the failure once (and stops
 * asking after NOT_SUPPORTED). */
static bool gpu_ok(gpu_priv *p, gpu_dev *d, int k, nvmlReturn_t r)
{
    if (r == NVML_SUCCESS)
        return true;
    if (r == NVML_ERROR_NOT_SUPPORTED)
        d->unsup[k] = true;
    if (!d->logged[k])
        log_info("sense: gpu %s: %s: %s%s", d->idx, gdefs[k].what, gpu_err(p, r),
                 r == NVML_ERROR_NOT_SUPPORTED ? " (left out)" : "");
    d->logged[k] = true;
    return false;
}

static void gpu_put(sense_t *s, sn_col *c, gpu_dev *d, int k, double v)
{
    sn_put(s, c, gpu_series(s, d, k), v);
}

/* Registers gpu.info{device,gpu,name,pci_bus_id,uuid} for one GPU. */
static void gpu_info(sense_t *s, gpu_priv *p, gpu_dev *d)
{
    char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE] = "", uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = "";
    char dev[32] = "";
    unsigned int minor;
    if (!p->n.DeviceGetName || p->n.DeviceGetName(d->h, name, sizeof name) != NVML_SUCCESS)
        core_sncpy(name, sizeof name, "unknown");
    if (!p->n.DeviceGetUUID || p->n.DeviceGetUUID(d->h, uuid, sizeof uuid) != NVML_SUCCESS)
        uuid[0] = 0;
    if (p->n.DeviceGetMinorNumber && p->n.DeviceGetMinorNumber(d->h, &minor) == NVML_SUCCESS)
        snprintf(dev, sizeof dev, "nvidia%u", minor);
    nvmlPciInfo_t pci;
    memset(&pci, 0, sizeof pci);
    if (!p->n.DeviceGetPciInfo_v3 || p->n.DeviceGetPciInfo_v3(d->h, &pci) != NVML_SUCCESS)
        pci.busId[0] = 0;
    pci.busId[sizeof pci.busId - 1] = 0;
    name[sizeof name - 1] = uuid[sizeof uuid - 1] = 0;
    char lab[400];
    sn_labels(lab, sizeof lab, 5, "gpu", d->idx, "uuid", uuid, "name", name, "device", dev, "pci_bus_id",
              pci.busId);
    d->ids[G_INFO] = sn_series(s, gdefs[G_INFO].name, lab, gdefs[G_INFO].unit, gdefs[G_INFO].help, MEM_GAUGE);
}

static void gpu_events_open(gpu_priv *p)
{
    if (!p->n.EventSetCreate || !p->n.DeviceRegisterEvents || !p->n.EventSetWait_v2 || !p->n.EventSetFree)
        return; /* logged by gpu_syms */
    nvmlReturn_t r = p->n.EventSetCreate(&p->events);
    if (r != NVML_SUCCESS) {
        log_info("sense: gpu: no XID events: %s", gpu_err(p, r));
        p->events = NULL;
        return;
    }
    for (int i = 0; i < p->ndev; i++) {
        gpu_dev *d = &p->dev[i];
        r = p->n.DeviceRegisterEvents(d->h, (unsigned long long)nvmlEventTypeXidCriticalError, p->events);
        d->xid = r == NVML_SUCCESS;
        if (!d->xid)
            gpu_ok(p, d, G_XID, r);
    }
}

/* Loads the library, initialises NVML and finds the GPUs. -ENODEV with why
 * when there is nothing to sense, -ENOMEM. */
static int gpu_open(sense_t *s, gpu_priv *p, char *why, size_t wn)
{
    const char *lib = s->cfg->sense_nvml_library; /* never empty: defaulted, "" refused */
    core_sncpy(p->lib, sizeof p->lib, lib);
    p->n.dl = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!p->n.dl) {
        const char *e = dlerror();
        snprintf(why, wn, "no NVML (%s)", e ? e : lib);
        return -ENODEV;
    }
    if (!gpu_syms(&p->n, why, wn))
        return -ENODEV;
    nvmlReturn_t r = p->n.Init_v2();
    if (r != NVML_SUCCESS) {
        snprintf(why, wn, "NVML: nvmlInit failed: %s", gpu_err(p, r));
        return -ENODEV;
    }
    p->inited = true;
    unsigned int count = 0;
    r = p->n.DeviceGetCount_v2(&count);
    if (r != NVML_SUCCESS) {
        snprintf(why, wn, "NVML: cannot count GPUs: %s", gpu_err(p, r));
        return -ENODEV;
    }
    if (count == 0) {
        snprintf(why, wn, "no NVIDIA GPU (NVML found none)");
        return -ENODEV;
    }
    if (count > GPU_MAX)
        count = GPU_MAX;
    p->dev = calloc(count, sizeof *p->dev);
    p->pbuf = calloc(GPU_PROC_BUF, sizeof *p->pbuf);
    if (!p->dev || !p->pbuf)
        return -ENOMEM;
    p->pcap = GPU_PROC_BUF;
    for (unsigned int i = 0; i < count; i++) {
        gpu_dev *d = &p->dev[p->ndev];
        r = p->n.DeviceGetHandleByIndex_v2(i, &d->h);
        if (r != NVML_SUCCESS) {
            log_info("sense: gpu %u: left out: %s", i, gpu_err(p, r));
            continue;
        }
        snprintf(d->idx, sizeof d->idx, "%u", i);
        sn_labels(d->labels, sizeof d->labels, 1, "gpu", d->idx);
        for (int k = 0; k < G_N; k++)
            d->ids[k] = -1;
        gpu_dev_unsup(&p->n, d);
        p->ndev++;
        gpu_info(s, p, d);
    }
    if (!p->ndev) {
        snprintf(why, wn, "NVML: none of %u GPUs could be opened", count);
        return -ENODEV;
    }
    gpu_events_open(p);
    return 0;
}

static void gpu_release(gpu_priv *p)
{
    if (p->events)
        p->n.EventSetFree(p->events);
    p->events = NULL;
    if (p->inited)
        p->n.Shutdown();
    p->inited = false;
    if (p->n.dl)
        dlclose(p->n.dl);
    p->n.dl = NULL;
}

/* Loads NVML and marks c available, or dead with the reason (logged once). */
static int gpu_setup(sense_t *s, sn_col *c, gpu_priv *p)
{
    p->deferred = false;
    char why[160];
    int r = gpu_open(s, p, why, sizeof why);
    if (r == -ENOMEM)
        return r;
    if (r < 0) {
        gpu_release(p);
        p->dead = true;
        sn_unavailable(s, c, "%s", why);
        return 0;
    }
    char note[160];
    snprintf(note, sizeof note, "NVML (%d GPU%s%s)", p->ndev, p->ndev == 1 ? "" : "s",
             p->events ? "" : ", no XID events");
    sn_available(c, note);
    return 0;
}

static int gpu_init(sense_t *s, sn_col *c)
{
    gpu_priv *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    c->priv = p;
    if (c->enabled)
        return gpu_setup(s, c, p);
    /* [sense.gpu] enabled = no: NVML is not even loaded until a reload enables it */
    p->deferred = true;
    sn_available(c, "NVML not loaded (disabled)");
    return 0;
}

static void gpu_fini(sense_t *s, sn_col *c)
{
    gpu_priv *p = c->priv;
    if (!p)
        return;
    gpu_release(p);
    free(p->dev);
    free(p->pbuf);
    free(p);
    c->priv = NULL;
}

/* Drains the XID events that are waiting (never waits). */
static void gpu_events(gpu_priv *p)
{
    if (!p->events)
        return;
    for (int n = 0; n < GPU_EVENTS_TICK; n++) {
        nvmlEventData_t ev;
        memset(&ev, 0, sizeof ev);
        if (p->n.EventSetWait_v2(p->events, &ev, 0) != NVML_SUCCESS)
            return; /* NVML_ERROR_TIMEOUT: none waiting */
        if (!(ev.eventType & (unsigned long long)nvmlEventTypeXidCriticalError))
            continue;
        for (int i = 0; i < p->ndev; i++) {
            gpu_dev *d = &p->dev[i];
            if (d->h != ev.device)
                continue;
            d->xid_count++;
            d->last_xid = ev.eventData;
            log_warn("sense: gpu %s: XID error %llu", d->idx, ev.eventData);
        }
    }
}

static int proc_cmp(const void *x, const void *y)
{
    const nvmlProcessInfo_t *a = x, *b = y;
    unsigned long long ma = a->usedGpuMemory == NVML_VALUE_NOT_AVAILABLE ? 0 : a->usedGpuMemory;
    unsigned long long mb = b->usedGpuMemory == NVML_VALUE_NOT_AVAILABLE ? 0 : b->usedGpuMemory;
    if (ma != mb)
        return ma < mb ? 1 : -1;
    return (a->pid > b->pid) - (a->pid < b->pid);
}

/* The series of one pid on d: a remembered slot, or a new one (replacing
 * the slot least recently put). */
static int proc_series(sense_t *s, sn_col *c, gpu_dev *d, unsigned int pid)
{
    gpu_proc *old = &d->procs[0];
    for (int i = 0; i < GPU_PROC_CACHE; i++) {
        gpu_proc *g = &d->procs[i];
        if (g->pid == pid && g->id >= 0) {
            g->gen = c->gen;
            return g->id;
        }
        if (g->gen < old->gen)
            old = g;
    }
    if (d->nproc_series >= GPU_PROC_SERIES) {
        if (!d->proc_capped)
            log_info("sense: gpu %s: %d processes seen: new ones are counted in gpu.processes only",
                     d->idx, GPU_PROC_SERIES);
        d->proc_capped = true;
        return -1;
    }
    char path[CORE_PATH_MAX + 32], comm[64];
    snprintf(path, sizeof path, "%s/%u/comm", s->proc, pid);
    const char *name = core_read_file(path, comm, sizeof comm) > 0 ? core_trim(comm) : "?";
    char spid[16], lab[200];
    snprintf(spid, sizeof spid, "%u", pid);
    sn_labels(lab, sizeof lab, 3, "gpu", d->idx, "pid", spid, "comm", name);
    int before = mem_series_count(s->mem);
    old->pid = pid;
    old->gen = c->gen;
    old->id = sn_series(s, "gpu.process_memory_bytes", lab, "bytes", "device memory used by a process",
                        MEM_GAUGE);
    if (mem_series_count(s->mem) > before)
        d->nproc_series++;
    return old->id;
}

/* Asks NVML for d's compute processes into p->pbuf, growing it once when
 * NVML says how many there are (INSUFFICIENT_SIZE sets *n to the count). */
static nvmlReturn_t gpu_proc_list(gpu_priv *p, gpu_dev *d, unsigned int *n)
{
    *n = p->pcap;
    nvmlReturn_t r = p->n.DeviceGetComputeRunningProcesses_v3(d->h, n, p->pbuf);
    if (r != NVML_ERROR_INSUFFICIENT_SIZE || *n <= p->pcap || p->pcap >= GPU_PROC_BUF_MAX)
        return r;
    unsigned int want = *n + *n / 4 + 16; /* room for a few more by the time we ask again */
    want = want > GPU_PROC_BUF_MAX ? GPU_PROC_BUF_MAX : want;
    nvmlProcessInfo_t *b = realloc(p->pbuf, want * sizeof *b);
    if (!b)
        return r;
    p->pbuf = b;
    p->pcap = want;
    *n = want;
    return p->n.DeviceGetComputeRunningProcesses_v3(d->h, n, p->pbuf);
}

static void gpu_procs(sense_t *s, sn_col *c, gpu_priv *p, gpu_dev *d)
{
    if (d->unsup[G_PROCS])
        return;
    unsigned int n;
    nvmlReturn_t r = gpu_proc_list(p, d, &n);
    if (!gpu_ok(p, d, G_PROCS, r))
        return;
    if (n > p->pcap)
        n = p->pcap;
    gpu_put(s, c, d, G_PROCS, n);
    qsort(p->pbuf, n, sizeof *p->pbuf, proc_cmp);
    for (unsigned int i = 0; i < n && i < GPU_MAX_PROCS; i++) {
        const nvmlProcessInfo_t *pi = &p->pbuf[i];
        if (pi->usedGpuMemory == NVML_VALUE_NOT_AVAILABLE || !pi->pid)
            continue;
        sn_put(s, c, proc_series(s, c, d, pi->pid), (double)pi->usedGpuMemory);
    }
}

static void gpu_collect_dev(sense_t *s, sn_col *c, gpu_priv *p, gpu_dev *d, bool pcie)
{
    const sn_nvml *n = &p->n;
    nvmlUtilization_t u;
    nvmlMemory_t m;
    unsigned int v;
    unsigned long long ull;
    sn_put(s, c, d->ids[G_INFO], 1);
    if (!d->unsup[G_UTIL] && gpu_ok(p, d, G_UTIL, n->DeviceGetUtilizationRates(d->h, &u))) {
        gpu_put(s, c, d, G_UTIL, u.gpu);
        gpu_put(s, c, d, G_MEMUTIL, u.memory);
    }
    if (!d->unsup[G_MEM_USED] && gpu_ok(p, d, G_MEM_USED, n->DeviceGetMemoryInfo(d->h, &m))) {
        gpu_put(s, c, d, G_MEM_USED, (double)m.used);
        gpu_put(s, c, d, G_MEM_FREE, (double)m.free);
        gpu_put(s, c, d, G_MEM_TOTAL, (double)m.total);
    }
    if (!d->unsup[G_TEMP] &&
        gpu_ok(p, d, G_TEMP, n->DeviceGetTemperature(d->h, NVML_TEMPERATURE_GPU, &v)))
        gpu_put(s, c, d, G_TEMP, v);
    if (!d->unsup[G_POWER] && gpu_ok(p, d, G_POWER, n->DeviceGetPowerUsage(d->h, &v)))
        gpu_put(s, c, d, G_POWER, v / 1000.0);
    if (!d->unsup[G_POWER_LIMIT] &&
        gpu_ok(p, d, G_POWER_LIMIT, n->DeviceGetEnforcedPowerLimit(d->h, &v)))
        gpu_put(s, c, d, G_POWER_LIMIT, v / 1000.0);
    if (!d->unsup[G_SM_CLOCK] && gpu_ok(p, d, G_SM_CLOCK, n->DeviceGetClockInfo(d->h, NVML_CLOCK_SM, &v)))
        gpu_put(s, c, d, G_SM_CLOCK, v * 1e6);
    if (!d->unsup[G_MEM_CLOCK] &&
        gpu_ok(p, d, G_MEM_CLOCK, n->DeviceGetClockInfo(d->h, NVML_CLOCK_MEM, &v)))
        gpu_put(s, c, d, G_MEM_CLOCK, v * 1e6);
    if (pcie && !d->unsup[G_PCIE_TX] &&
        gpu_ok(p, d, G_PCIE_TX, n->DeviceGetPcieThroughput(d->h, NVML_PCIE_UTIL_TX_BYTES, &v)))
        gpu_put(s, c, d, G_PCIE_TX, v * 1024.0);
    if (pcie && !d->unsup[G_PCIE_RX] &&
        gpu_ok(p, d, G_PCIE_RX, n->DeviceGetPcieThroughput(d->h, NVML_PCIE_UTIL_RX_BYTES, &v)))
        gpu_put(s, c, d, G_PCIE_RX, v * 1024.0);
    if (!d->unsup[G_ECC_CORR] &&
        gpu_ok(p, d, G_ECC_CORR, n->DeviceGetTotalEccErrors(d->h, NVML_MEMORY_ERROR_TYPE_CORRECTED,
                                                            NVML_VOLATILE_ECC, &ull)))
        gpu_put(s, c, d, G_ECC_CORR, (double)ull);
    if (!d->unsup[G_ECC_UNCORR] &&
        gpu_ok(p, d, G_ECC_UNCORR, n->DeviceGetTotalEccErrors(d->h, NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                                                              NVML_VOLATILE_ECC, &ull)))
        gpu_put(s, c, d, G_ECC_UNCORR, (double)ull);
    if (!d->unsup[G_THROTTLE] &&
        gpu_ok(p, d, G_THROTTLE, n->DeviceGetCurrentClocksThrottleReasons(d->h, &ull)))
        gpu_put(s, c, d, G_THROTTLE, (double)ull);
    if (d->xid) {
        gpu_put(s, c, d, G_XID, (double)d->xid_count);
        gpu_put(s, c, d, G_LAST_XID, (double)d->last_xid);
    }
    gpu_procs(s, c, p, d);
}

static int gpu_collect(sense_t *s, sn_col *c, int64_t now_ms)
{
    gpu_priv *p = c->priv;
    if (p->deferred) {
        int r = gpu_setup(s, c, p);
        if (r < 0)
            return r;
    }
    if (p->dead)
        return -ENODEV; /* the note from set-up stays; not logged again */
    gpu_events(p);
    for (int i = 0; i < p->ndev; i++)
        gpu_collect_dev(s, c, p, &p->dev[i], (c->gen - 1 + (uint32_t)i) % GPU_PCIE_EVERY == 0);
    return 0;
}

/* A reload does not load another library: say so. */
static int gpu_reconfigure(sense_t *s, sn_col *c)
{
    gpu_priv *p = c->priv;
    const char *lib = s->cfg->sense_nvml_library;
    if (strcmp(lib, p->lib))
        log_warn("sense: nvml_library changes take effect after a restart (still %s)", p->lib);
    return 0;
}

const sn_module sn_mod_gpu = {
    .name = "gpu", .init = gpu_init, .collect = gpu_collect, .fini = gpu_fini,
    .reconfigure = gpu_reconfigure,
};
