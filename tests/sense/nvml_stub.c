/* nvml_stub.c: a stand-in for libnvidia-ml.so.1 built by the test suite.
 * It implements the NVML functions the gpu collector uses (declared in
 * src/sense/nvml.h, NVML's own signatures) and answers from a script file
 * named by $NVML_STUB_SCRIPT, read at every call and parsed again whenever
 * its text changed, so a test can change values, add XID events or make
 * calls fail while ippocd runs (write it whole: rename a new file over it):
 *
 *   # comment
 *   init 9                       nvmlInit_v2 returns this code (default 0)
 *   gpu 0 name=NVIDIA_H200 uuid=GPU-1 minor=0 util=37 memutil=12
 *         total=150000000000 used=1000000 temp=45 power=110500 limit=700000
 *         sm=1980 mem=2619 tx=1000 rx=2000 ecc_c=1 ecc_u=0 throttle=4
 *         procs=1234:1048576,5678:2097152 xid=79,48 fail=power:3,temp:15
 *
 * (one line per GPU; '_' in name is a blank; power and limit in mW, clocks
 * in MHz, tx/rx in KB/s; fail=FUNC:CODE makes a query return an NVML error:
 * FUNC is util, memory, temp, power, limit, clock, pcie, ecc, throttle,
 * procs, name, uuid, minor, pci, handle or events; GPU N is on PCI bus
 * 0x0F + N). Each XID listed is delivered
 * once by nvmlEventSetWait_v2, in order; appending one delivers it next.
 * Built again with -DNVML_STUB_OLD it lacks nvmlDeviceGetPcieThroughput,
 * nvmlDeviceGetComputeRunningProcesses_v3 and nvmlEventSetWait_v2, as an
 * older driver's library would. */
#include "sense/nvml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STUB_GPUS 8
#define STUB_PROCS 512
#define STUB_XIDS 32
#define STUB_FAILS 16

typedef struct stub_gpu {
    char name[96], uuid[96];
    unsigned int minor, util, memutil, temp, power, limit, sm, mem, tx, rx;
    unsigned long long total, used, ecc_c, ecc_u, throttle;
    unsigned int npids;
    unsigned int pid[STUB_PROCS];
    unsigned long long pmem[STUB_PROCS];
    unsigned int nxid;
    unsigned long long xid[STUB_XIDS];
    unsigned int delivered;        /* XIDs handed out so far (kept across reloads) */
    int nfail;
    char fail_fn[STUB_FAILS][16];
    int fail_code[STUB_FAILS];
    int registered;                /* events registered on a set */
} stub_gpu;

static struct {
    int init_code;
    int inited;
    unsigned int ngpu;
    stub_gpu gpu[STUB_GPUS];
    char text[16384];              /* the script as last parsed */
    int loaded;
} st;

static struct nvmlEventSet_st {
    int dummy;
} the_set;

static void parse_list_u(const char *v, stub_gpu *g)
{
    g->npids = 0;
    while (*v && g->npids < STUB_PROCS) {
        char *end;
        unsigned long pid = strtoul(v, &end, 10);
        unsigned long long mem = 0;
        if (*end == ':')
            mem = strtoull(end + 1, &end, 10);
        g->pid[g->npids] = (unsigned int)pid;
        g->pmem[g->npids++] = mem;
        if (*end != ',')
            break;
        v = end + 1;
    }
}

static void parse_kv(stub_gpu *g, const char *k, const char *v)
{
    struct { const char *k; unsigned int *p; } u32[] = {
        {"minor", &g->minor}, {"util", &g->util}, {"memutil", &g->memutil}, {"temp", &g->temp},
        {"power", &g->power}, {"limit", &g->limit}, {"sm", &g->sm}, {"mem", &g->mem},
        {"tx", &g->tx}, {"rx", &g->rx},
    };
    struct { const char *k; unsigned long long *p; } u64[] = {
        {"total", &g->total}, {"used", &g->used}, {"ecc_c", &g->ecc_c}, {"ecc_u", &g->ecc_u},
        {"throttle", &g->throttle},
    };
    for (size_t i = 0; i < sizeof u32 / sizeof u32[0]; i++)
        if (!strcmp(k, u32[i].k))
            *u32[i].p = (unsigned int)strtoul(v, NULL, 0);
    for (size_t i = 0; i < sizeof u64 / sizeof u64[0]; i++)
        if (!strcmp(k, u64[i].k))
            *u64[i].p = strtoull(v, NULL, 0);
    if (!strcmp(k, "name")) {
        snprintf(g->name, sizeof g->name, "%s", v);
        for (char *x = g->name; *x; x++)
            if (*x == '_')
                *x = ' ';
    } else if (!strcmp(k, "uuid")) {
        snprintf(g->uuid, sizeof g->uuid, "%s", v);
    } else if (!strcmp(k, "procs")) {
        parse_list_u(v, g);
    } else if (!strcmp(k, "xid")) {
        g->nxid = 0;
        while (*v && g->nxid < STUB_XIDS) {
            char *end;
            g->xid[g->nxid++] = strtoull(v, &end, 10);
            if (*end != ',')
                break;
            v = end + 1;
        }
    } else if (!strcmp(k, "fail")) {
        while (*v && g->nfail < STUB_FAILS) {
            const char *colon = strchr(v, ':');
            if (!colon)
                break;
            snprintf(g->fail_fn[g->nfail], sizeof g->fail_fn[0], "%.*s", (int)(colon - v), v);
            char *end;
            g->fail_code[g->nfail++] = (int)strtol(colon + 1, &end, 10);
            if (*end != ',')
                break;
            v = end + 1;
        }
    }
}

/* Reads the script; parses it again when its text changed. */
static void load(void)
{
    const char *path = getenv("NVML_STUB_SCRIPT");
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f)
        return;
    /* compared by content: a rewrite within the file system's timestamp
     * granularity, at the same size, is still seen */
    char text[sizeof st.text];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    if (st.loaded && !strcmp(text, st.text))
        return;
    memcpy(st.text, text, n + 1);
    unsigned int delivered[STUB_GPUS];
    int registered[STUB_GPUS];
    for (int i = 0; i < STUB_GPUS; i++)
        delivered[i] = st.gpu[i].delivered, registered[i] = st.gpu[i].registered;
    memset(st.gpu, 0, sizeof st.gpu);
    st.ngpu = 0;
    st.init_code = 0;
    char *lsave = NULL;
    for (char *line = strtok_r(text, "\n", &lsave); line; line = strtok_r(NULL, "\n", &lsave)) {
        char *save = NULL, *w = strtok_r(line, " \t", &save);
        if (!w || w[0] == '#')
            continue;
        if (!strcmp(w, "init")) {
            char *v = strtok_r(NULL, " \t", &save);
            st.init_code = v ? atoi(v) : 0;
            continue;
        }
        if (strcmp(w, "gpu"))
            continue;
        char *idx = strtok_r(NULL, " \t", &save);
        unsigned int i = idx ? (unsigned int)atoi(idx) : STUB_GPUS;
        if (i >= STUB_GPUS)
            continue;
        stub_gpu *g = &st.gpu[i];
        while ((w = strtok_r(NULL, " \t", &save))) {
            char *eq = strchr(w, '=');
            if (!eq)
                continue;
            *eq = 0;
            parse_kv(g, w, eq + 1);
        }
        if (i + 1 > st.ngpu)
            st.ngpu = i + 1;
    }
    for (int i = 0; i < STUB_GPUS; i++)
        st.gpu[i].delivered = delivered[i], st.gpu[i].registered = registered[i];
    st.loaded = 1;
}

/* The GPU behind a handle (handles point into st.gpu), or NULL. */
static stub_gpu *gpu_of(nvmlDevice_t d)
{
    stub_gpu *g = (stub_gpu *)(void *)d;
    if (g < st.gpu || g >= st.gpu + st.ngpu)
        return NULL;
    return g;
}

/* NVML_SUCCESS, or the scripted failure of fn on g, or an argument error. */
static nvmlReturn_t check(nvmlDevice_t d, const char *fn, stub_gpu **out)
{
    if (!st.inited)
        return NVML_ERROR_UNINITIALIZED;
    load();
    stub_gpu *g = gpu_of(d);
    if (!g)
        return NVML_ERROR_INVALID_ARGUMENT;
    for (int i = 0; i < g->nfail; i++)
        if (!strcmp(g->fail_fn[i], fn))
            return (nvmlReturn_t)g->fail_code[i];
    *out = g;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit_v2(void)
{
    load();
    if (st.init_code)
        return (nvmlReturn_t)st.init_code;
    st.inited++;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlShutdown(void)
{
    if (!st.inited)
        return NVML_ERROR_UNINITIALIZED;
    st.inited--;
    return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t r)
{
    switch (r) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_TIMEOUT: return "Timeout";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *n)
{
    if (!st.inited)
        return NVML_ERROR_UNINITIALIZED;
    load();
    *n = st.ngpu;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d)
{
    if (!st.inited)
        return NVML_ERROR_UNINITIALIZED;
    load();
    if (i >= st.ngpu)
        return NVML_ERROR_INVALID_ARGUMENT;
    stub_gpu *g;
    nvmlReturn_t r = check((nvmlDevice_t)(void *)&st.gpu[i], "handle", &g);
    if (r == NVML_SUCCESS)
        *d = (nvmlDevice_t)(void *)g;
    return r;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int len)
{
    stub_gpu *g;
    nvmlReturn_t r = check(d, "name", &g);
    if (r == NVML_SUCCESS)
        snprintf(name, len, "%s", g->name);
    return r;
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int len)
{
    stub_gpu *g;
    nvmlReturn_t r = check(d, "uuid", &g);
    if (r == NVML_SUCCESS)
        snprintf(uuid, len, "%s", g->uuid);
    return r;
}

nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t d, unsigned int *minor)
{
    stub_gpu *g;
    nvmlReturn_t r = check(d, "minor", &g);
    if (r == NVML_SUCCESS)
        *minor = g->minor;
    return r;
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *pci)
{
    stub_gpu *g;
    nvmlReturn_t r = check(d, "pci", &g);
    if (r != NVML_SUCCESS)
        return r;
    memset(pci, 0, sizeof *pci);
    pci->domain = 0;
    pci->bus = (unsigned int)(g - st.gpu) + 0x0f;
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "0000:%02X:00.0", pci->bus);
    snprintf(pci->busId, sizeof pci->busId, "00000000:%02X:00.0", pci->bus);
    pci->pciDeviceId = 0x233510de;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u)
{
    stub_gpu *g;
    nvmlReturn_t r = check(d, "util", &g);
    if (r == NVML_SUCCESS)
        u->gpu = g->util, u->memory = g->memutil;
    return r;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m)
{
    stub_gpu *g;
    nvmlReturn_t r = check(d, "memory", &g);
    if (r == NVML_SUCCESS)
        m->total = g->total, m->used = g->used, m->free = g->total - g->used;
    return r;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, nvmlTemperatureSensors_t s, unsigned int *t)
{
    stub_gpu *g;
    nvmlReturn_t r = check(d, "temp", &g);
    if (r == NVML_SUCCESS && s != NVML_TEMPERATURE_GPU)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (r == NVML_SUCCESS)
        *t = g->temp;
    return r;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *p)
{
    stub_gpu *g;
    nvmlReturn_t r = check(d, "power", &g);
    if (r == NVML_SUCCESS)
        *p = g->power;
    return r;
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned int *l)
{
    stub_gpu *g;
    nvmlReturn_t r = check(d, "limit", &g);
    if (r == NVML_SUCCESS)
        *l = g->limit;
    return r;
}

nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, nvmlClockType_t t, unsigned int *c)
{
    stub_gpu *g;
    nvmlReturn_t r = check(d, "clock", &g);
    if (r != NVML_SUCCESS)
        return r;
    if (t == NVML_CLOCK_SM)
        *c = g->sm;
    else if (t == NVML_CLOCK_MEM)
        *c = g->mem;
    else
        return NVML_ERROR_NOT_SUPPORTED;
    return NVML_SUCCESS;
}

#ifndef NVML_STUB_OLD
nvmlReturn_t nvmlDeviceGetPcieThroughput(nvmlDevice_t d, nvmlPcieUtilCounter_t c, unsigned int *v)
{
    stub_gpu *g;
    nvmlReturn_t r = check(d, "pcie", &g);
    if (r == NVML_SUCCESS)
        *v = c == NVML_PCIE_UTIL_TX_BYTES ? g->tx : g->rx;
    return r;
}
#endif

nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t d, nvmlMemoryErrorType_t e, nvmlEccCounterType_t c,
                                         unsigned long long *n)
{
    stub_gpu *g;
    nvmlReturn_t r = check(d, "ecc", &g);
    if (r == NVML_SUCCESS && c != NVML_VOLATILE_ECC)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (r == NVML_SUCCESS)
        *n = e == NVML_MEMORY_ERROR_TYPE_CORRECTED ? g->ecc_c : g->ecc_u;
    return r;
}

nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t d, unsigned long long *t)
{
    stub_gpu *g;
    nvmlReturn_t r = check(d, "throttle", &g);
    if (r == NVML_SUCCESS)
        *t = g->throttle;
    return r;
}

#ifndef NVML_STUB_OLD
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *count,
                                                     nvmlProcessInfo_t *infos)
{
    stub_gpu *g;
    nvmlReturn_t r = check(d, "procs", &g);
    if (r != NVML_SUCCESS)
        return r;
    if (*count < g->npids) {
        *count = g->npids;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (unsigned int i = 0; i < g->npids; i++) {
        memset(&infos[i], 0, sizeof infos[i]);
        infos[i].pid = g->pid[i];
        infos[i].usedGpuMemory = g->pmem[i];
    }
    *count = g->npids;
    return NVML_SUCCESS;
}
#endif

nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set)
{
    if (!st.inited)
        return NVML_ERROR_UNINITIALIZED;
    *set = &the_set;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t d, unsigned long long types, nvmlEventSet_t set)
{
    stub_gpu *g;
    nvmlReturn_t r = check(d, "events", &g);
    if (r == NVML_SUCCESS && set != &the_set)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (r == NVML_SUCCESS && (types & nvmlEventTypeXidCriticalError))
        g->registered = 1;
    return r;
}

#ifndef NVML_STUB_OLD
nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeoutms)
{
    if (!st.inited)
        return NVML_ERROR_UNINITIALIZED;
    if (set != &the_set)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (timeoutms != 0)
        return NVML_ERROR_INVALID_ARGUMENT; /* the collector must never wait */
    load();
    for (unsigned int i = 0; i < st.ngpu; i++) {
        stub_gpu *g = &st.gpu[i];
        if (!g->registered || g->delivered >= g->nxid)
            continue;
        memset(data, 0, sizeof *data);
        data->device = (nvmlDevice_t)(void *)g;
        data->eventType = nvmlEventTypeXidCriticalError;
        data->eventData = g->xid[g->delivered++];
        return NVML_SUCCESS;
    }
    return NVML_ERROR_TIMEOUT;
}
#endif

nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set)
{
    return set == &the_set ? NVML_SUCCESS : NVML_ERROR_INVALID_ARGUMENT;
}
