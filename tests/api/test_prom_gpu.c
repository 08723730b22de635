/* test_prom_gpu.c: the dcgm-exporter families rendered from gpu.* series
 * (src/api/prom_gpu.c): names, units (MiB, MHz, KB/s), the labels joined
 * from gpu.info, ECC split by type, escaping, series without a value or a
 * gpu label left out, and nothing at all without GPU series. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api_int.h"

static mem_series_info S(int id, const char *name, const char *labels, double last)
{
    mem_series_info s = {.id = id, .name = name, .labels = labels, .unit = "", .help = "", .last = last};
    return s;
}

static char *render(const mem_series_info *s, size_t n)
{
    api_buf b = {0};
    assert_int_equal(api_prom_gpu(&b, s, n), 0);
    assert_false(b.oom);
    return b.p ? b.p : strdup("");
}

static void want_line(const char *text, const char *line)
{
    char *l = malloc(strlen(line) + 3);
    sprintf(l, "\n%s\n", line);
    bool found = strstr(text, l) || !strncmp(text, l + 1, strlen(l + 1));
    if (!found)
        fail_msg("missing line '%s' in:\n%s", line, text);
    free(l);
}

static void test_families(void **st)
{
    (void)st;
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    const mem_series_info s[] = {
        S(1, "gpu.info",
          "device=\"nvidia0\",gpu=\"0\",name=\"NVIDIA \\\"H200\\\"\",pci_bus_id=\"00000000:0F:00.0\",uuid=\"GPU-a\"", 1),
        S(2, "gpu.temperature", "gpu=\"0\"", 45),
        S(3, "gpu.memory_used_bytes", "gpu=\"0\"", 1048576.0 * 1000 + 5),
        S(4, "gpu.sm_clock_hz", "gpu=\"0\"", 1980e6),
        S(5, "gpu.pcie_tx_bytes_per_second", "gpu=\"0\"", 2048),
        S(6, "gpu.ecc_errors", "gpu=\"0\",type=\"corrected\"", 3),
        S(7, "gpu.ecc_errors", "gpu=\"0\",type=\"uncorrected\"", 1),
        S(8, "gpu.temperature", "gpu=\"1\"", 50),          /* no gpu.info: empty labels */
        S(9, "gpu.power_watts", "gpu=\"0\"", NAN),         /* no value: left out */
        S(10, "gpu.utilization_percent", "", 7),           /* no gpu label: left out */
        S(11, "cpu.usage_percent", "cpu=\"total\"", 3),
    };
    char *t = render(s, sizeof s / sizeof s[0]);
    char line[512];
    snprintf(line, sizeof line,
             "DCGM_FI_DEV_GPU_TEMP{gpu=\"0\",UUID=\"GPU-a\",pci_bus_id=\"00000000:0F:00.0\",device=\"nvidia0\",model_name=\"NVIDIA \\\"H200\\\"\","
             "Hostname=\"%s\"} 45", host);
    want_line(t, line);
    snprintf(line, sizeof line,
             "DCGM_FI_DEV_GPU_TEMP{gpu=\"1\",UUID=\"\",pci_bus_id=\"\",device=\"\",model_name=\"\",Hostname=\"%s\"} 50", host);
    want_line(t, line);
    want_line(t, "# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).");
    want_line(t, "# TYPE DCGM_FI_DEV_GPU_TEMP gauge");
    assert_non_null(strstr(t, "DCGM_FI_DEV_FB_USED{gpu=\"0\","));
    assert_non_null(strstr(t, "\"} 1000\n"));             /* MiB, whole */
    assert_non_null(strstr(t, "\"} 1980\n"));             /* MHz */
    assert_non_null(strstr(t, "DCGM_FI_DEV_PCIE_TX_THROUGHPUT{gpu=\"0\""));
    assert_non_null(strstr(t, "\"} 2\n"));                /* KB/s */
    assert_non_null(strstr(t, "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL{gpu=\"0\""));
    char *sbe = strstr(t, "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL{"), *dbe = strstr(t, "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{");
    assert_non_null(sbe);
    assert_non_null(dbe);
    assert_int_equal(atoi(strchr(strstr(sbe, "} "), ' ') + 1), 3);
    assert_int_equal(atoi(strchr(strstr(dbe, "} "), ' ') + 1), 1);
    assert_null(strstr(t, "DCGM_FI_DEV_POWER_USAGE"));   /* NaN: no family at all */
    assert_null(strstr(t, "DCGM_FI_DEV_GPU_UTIL"));
    assert_null(strstr(t, "cpu"));
    /* every family once: HELP count == TYPE count == distinct names */
    int helps = 0;
    for (const char *x = t; (x = strstr(x, "# HELP ")); x++)
        helps++;
    assert_int_equal(helps, 6); /* TEMP, FB_USED, SM_CLOCK, PCIE_TX, ECC SBE, ECC DBE */
    free(t);
}

static void test_no_gpu(void **st)
{
    (void)st;
    const mem_series_info s[] = {S(1, "cpu.usage_percent", "cpu=\"total\"", 3)};
    char *t = render(s, 1);
    assert_string_equal(t, "");
    free(t);
    t = render(NULL, 0);
    assert_string_equal(t, "");
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_families),
        cmocka_unit_test(test_no_gpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
