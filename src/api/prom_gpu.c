/* prom_gpu.c: the GPU series (gpu.* families, src/sense/gpu.c) on /metrics
 * under the names, units and labels of NVIDIA's dcgm-exporter, so its
 * Grafana dashboards and alerts work on ippocd: DCGM_FI_DEV_GPU_UTIL,
 * DCGM_FI_DEV_FB_USED (MiB), DCGM_FI_DEV_SM_CLOCK (MHz), ... with labels
 * gpu, UUID, pci_bus_id, device, model_name and Hostname, rendered from the same series
 * snapshot as the rest of /metrics (the last value of each series).
 *
 * Two deliberate differences keep `promtool check metrics` clean: the model
 * label is `model_name` (dcgm-exporter's `modelName` is camelCase, which
 * promtool rejects), and every family is a gauge (dcgm-exporter calls the
 * PCIe throughput, a KB/s rate, and the ECC totals counters, though their
 * names lack the `_total` suffix promtool requires of a counter). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api_int.h"

static const struct {
    const char *dcgm, *series, *type, *help;
    double scale; /* series value * scale */
    bool floor;   /* whole units, as dcgm-exporter reports them */
} fams[] = {
    {"DCGM_FI_DEV_SM_CLOCK", "gpu.sm_clock_hz", NULL, "SM clock frequency (in MHz).", 1e-6, true},
    {"DCGM_FI_DEV_MEM_CLOCK", "gpu.memory_clock_hz", NULL, "Memory clock frequency (in MHz).", 1e-6, true},
    {"DCGM_FI_DEV_GPU_TEMP", "gpu.temperature", NULL, "GPU temperature (in C).", 1, false},
    {"DCGM_FI_DEV_POWER_USAGE", "gpu.power_watts", NULL, "Power draw (in W).", 1, false},
    {"DCGM_FI_DEV_POWER_MGMT_LIMIT", "gpu.power_limit_watts", NULL, "Power management limit (in W).", 1,
     false},
    {"DCGM_FI_DEV_PCIE_TX_THROUGHPUT", "gpu.pcie_tx_bytes_per_second", NULL,
     "PCIe TX throughput (in KB/s) via NVML.", 1.0 / 1024, true},
    {"DCGM_FI_DEV_PCIE_RX_THROUGHPUT", "gpu.pcie_rx_bytes_per_second", NULL,
     "PCIe RX throughput (in KB/s) via NVML.", 1.0 / 1024, true},
    {"DCGM_FI_DEV_GPU_UTIL", "gpu.utilization_percent", NULL, "GPU utilization (in %).", 1, false},
    {"DCGM_FI_DEV_MEM_COPY_UTIL", "gpu.memory_utilization_percent", NULL, "Memory utilization (in %).", 1,
     false},
    {"DCGM_FI_DEV_XID_ERRORS", "gpu.last_xid", NULL, "Value of the last XID error encountered.", 1, false},
    {"DCGM_FI_DEV_FB_FREE", "gpu.memory_free_bytes", NULL, "Framebuffer memory free (in MiB).",
     1.0 / 1048576, true},
    {"DCGM_FI_DEV_FB_USED", "gpu.memory_used_bytes", NULL, "Framebuffer memory used (in MiB).",
     1.0 / 1048576, true},
    {"DCGM_FI_DEV_FB_TOTAL", "gpu.memory_total_bytes", NULL, "Framebuffer memory total (in MiB).",
     1.0 / 1048576, true},
    {"DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "gpu.ecc_errors", "corrected",
     "Total number of single-bit volatile ECC errors.", 1, false},
    {"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "gpu.ecc_errors", "uncorrected",
     "Total number of double-bit volatile ECC errors.", 1, false},
    {"DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "gpu.throttle_reasons", NULL,
     "Current clock throttle reasons (bitmask of DCGM_CLOCKS_THROTTLE_REASON_*).", 1, false},
};

/* What gpu.info says about one GPU. */
typedef struct gpu_ident {
    char gpu[32], uuid[API_LABEL_MAX], name[API_LABEL_MAX], device[64], pci[64];
} gpu_ident;

static const char *label_of(const api_label *l, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(l[i].name, name))
            return l[i].value;
    return NULL;
}

static void put_label(api_buf *b, const char *name, const char *value, bool first)
{
    if (!first)
        api_buf_add(b, ",", 1);
    api_buf_puts(b, name);
    api_buf_add(b, "=\"", 2);
    api_prom_escape(b, value, true);
    api_buf_add(b, "\"", 1);
}

/* Collects the gpu.info series; returns how many (at most max). */
static int read_idents(const mem_series_info *s, size_t n, api_label *l, gpu_ident *out, int max)
{
    int k = 0;
    char err[64];
    for (size_t i = 0; i < n && k < max; i++) {
        if (strcmp(s[i].name, "gpu.info") || isnan(s[i].last))
            continue;
        int nl = api_labels_parse(s[i].labels ? s[i].labels : "", l, API_MAX_LABELS, err, sizeof err);
        const char *g = nl > 0 ? label_of(l, nl, "gpu") : NULL;
        if (!g)
            continue;
        gpu_ident *o = &out[k++];
        const char *v;
        snprintf(o->gpu, sizeof o->gpu, "%s", g);
        snprintf(o->uuid, sizeof o->uuid, "%s", (v = label_of(l, nl, "uuid")) ? v : "");
        snprintf(o->name, sizeof o->name, "%s", (v = label_of(l, nl, "name")) ? v : "");
        snprintf(o->device, sizeof o->device, "%s", (v = label_of(l, nl, "device")) ? v : "");
        snprintf(o->pci, sizeof o->pci, "%s", (v = label_of(l, nl, "pci_bus_id")) ? v : "");
    }
    return k;
}

static void put_sample(api_buf *b, const char *fam, const char *gpu, const gpu_ident *id, const char *host,
                       double v)
{
    char val[40];
    api_prom_value(v, val, sizeof val);
    api_buf_puts(b, fam);
    api_buf_add(b, "{", 1);
    put_label(b, "gpu", gpu, true);
    put_label(b, "UUID", id ? id->uuid : "", false);
    put_label(b, "pci_bus_id", id ? id->pci : "", false);
    put_label(b, "device", id ? id->device : "", false);
    put_label(b, "model_name", id ? id->name : "", false);
    put_label(b, "Hostname", host, false);
    api_buf_add(b, "} ", 2);
    api_buf_puts(b, val);
    api_buf_add(b, "\n", 1);
}

/* One dcgm family: HELP and TYPE once, then a sample per GPU that has it. */
static void put_family(api_buf *b, int f, const mem_series_info *s, size_t n, api_label *l,
                       const gpu_ident *ids, int nids, const char *host)
{
    bool head = false;
    char err[64];
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s[i].name, fams[f].series) || isnan(s[i].last))
            continue;
        int nl = api_labels_parse(s[i].labels ? s[i].labels : "", l, API_MAX_LABELS, err, sizeof err);
        const char *g = nl > 0 ? label_of(l, nl, "gpu") : NULL;
        const char *t = nl > 0 ? label_of(l, nl, "type") : NULL;
        if (!g || (fams[f].type && (!t || strcmp(t, fams[f].type))))
            continue;
        char gpu[32];
        snprintf(gpu, sizeof gpu, "%s", g);
        const gpu_ident *id = NULL;
        for (int k = 0; k < nids && !id; k++)
            if (!strcmp(ids[k].gpu, gpu))
                id = &ids[k];
        if (!head)
            api_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", fams[f].dcgm, fams[f].help, fams[f].dcgm);
        head = true;
        double v = s[i].last * fams[f].scale;
        put_sample(b, fams[f].dcgm, gpu, id, host, fams[f].floor ? floor(v) : v);
    }
}

int api_prom_gpu(api_buf *b, const mem_series_info *s, size_t n)
{
    bool any = false;
    for (size_t i = 0; i < n && !any; i++)
        any = !strncmp(s[i].name, "gpu.", 4);
    if (!any)
        return 0;
    enum { MAX_GPUS = 64 };
    api_label *l = malloc(API_MAX_LABELS * sizeof *l);
    gpu_ident *ids = malloc(MAX_GPUS * sizeof *ids);
    if (!l || !ids) {
        free(l);
        free(ids);
        b->oom = true;
        return -ENOMEM;
    }
    char host[256] = "";
    if (gethostname(host, sizeof host - 1))
        host[0] = 0;
    int nids = read_idents(s, n, l, ids, MAX_GPUS);
    for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++)
        put_family(b, (int)f, s, n, l, ids, nids, host);
    free(l);
    free(ids);
    return b->oom ? -ENOMEM : 0;
}
