/* nx_hw.c: node_exporter's hardware collectors over sysfs: cpufreq (per CPU
 * frequencies and governor), thermal_zone (zones and cooling devices), hwmon
 * (every chip's sensors, named and scaled as node_exporter does), power
 * supplies (/sys/class/power_supply) and edac (memory controllers' error
 * counters). Each is absent (no families) where the hardware is; like
 * node_exporter, hwmon and power supplies then report failure, the others
 * success. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sense/nx_sys.h"

/* ---- cpufreq ---------------------------------------------------------------------- */
/* kHz in sysfs; node_exporter 1.5 has no governor family (later versions do).
 * node_exporter fails the whole collector when a CPU's cpufreq dir lacks an
 * attribute it reads (scaling_setspeed, say); this reports what is there. */
static void cpufreq_hz(nx_ctx *x, const char *cpu, const char *file, const char *name, const char *help)
{
    uint64_t khz;
    if (nx_read_u64(x, x->sys, &khz, "devices/system/cpu/cpu%s/cpufreq/%s", cpu, file) == 0)
        nx_sample(x, nx_family(x, name, NX_GAUGE, help), (double)khz * 1000.0, 1, "cpu", cpu);
}

NX_COLLECTOR(cpufreq)
{
    struct dirent **v;
    int n = nxs_scan(x->sys, "devices/system/cpu", "cpu", true, &v);
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++) {
        const char *cpu = v[i]->d_name + 3;
        cpufreq_hz(x, cpu, "cpuinfo_cur_freq", "node_cpu_frequency_hertz", "Current cpu thread frequency in hertz.");
        cpufreq_hz(x, cpu, "cpuinfo_max_freq", "node_cpu_frequency_max_hertz", "Maximum cpu thread frequency in hertz.");
        cpufreq_hz(x, cpu, "cpuinfo_min_freq", "node_cpu_frequency_min_hertz", "Minimum cpu thread frequency in hertz.");
        cpufreq_hz(x, cpu, "scaling_cur_freq", "node_cpu_scaling_frequency_hertz",
                   "Current scaled CPU thread frequency in hertz.");
        cpufreq_hz(x, cpu, "scaling_max_freq", "node_cpu_scaling_frequency_max_hertz",
                   "Maximum scaled CPU thread frequency in hertz.");
        cpufreq_hz(x, cpu, "scaling_min_freq", "node_cpu_scaling_frequency_min_hertz",
                   "Minimum scaled CPU thread frequency in hertz.");
    }
    nxs_names_free(v, n);
    return 0;
}

/* ---- thermal_zone ----------------------------------------------------------------- */
NX_COLLECTOR(thermal_zone)
{
    struct dirent **v;
    int n = nxs_scan(x->sys, "class/thermal", "thermal_zone", true, &v);
    if (n < 0) /* node_exporter globs: no class dir is no zones, not a failure */
        return n == -ENOENT ? 0 : n;
    int ftemp = nx_family(x, "node_thermal_zone_temp", NX_GAUGE, "Zone temperature in Celsius");
    for (int i = 0; i < n; i++) {
        char type[64];
        int64_t milli;
        double d;
        /* a zone whose sensor cannot be read now (ENODATA, EAGAIN) is skipped */
        if (nx_read_str(x, x->sys, type, sizeof type, "class/thermal/%s/type", v[i]->d_name) < 0 ||
            nx_read_dbl(x, x->sys, &d, "class/thermal/%s/temp", v[i]->d_name) < 0)
            continue;
        milli = (int64_t)d;
        nx_sample(x, ftemp, (double)milli / 1000.0, 2, "type", type, "zone", v[i]->d_name + 12);
    }
    nxs_names_free(v, n);
    n = nxs_scan(x->sys, "class/thermal", "cooling_device", true, &v);
    if (n < 0)
        return 0;
    int fcur = nx_family(x, "node_cooling_device_cur_state", NX_GAUGE, "Current throttle state of the cooling device");
    int fmax = nx_family(x, "node_cooling_device_max_state", NX_GAUGE, "Maximum throttle state of the cooling device");
    for (int i = 0; i < n; i++) {
        char type[64];
        double cur, max;
        const char *d = v[i]->d_name;
        if (nx_read_str(x, x->sys, type, sizeof type, "class/thermal/%s/type", d) < 0 ||
            nx_read_dbl(x, x->sys, &max, "class/thermal/%s/max_state", d) < 0 ||
            nx_read_dbl(x, x->sys, &cur, "class/thermal/%s/cur_state", d) < 0)
            continue;
        nx_sample(x, fcur, cur, 2, "name", d + 14, "type", type);
        nx_sample(x, fmax, max, 2, "name", d + 14, "type", type);
    }
    nxs_names_free(v, n);
    return 0;
}

/* ---- hwmon ------------------------------------------------------------------------ */
/* node_exporter's cleanMetricName: lower case, [^a-z0-9:_] -> _, trimmed of _. */
static void hw_clean(const char *in, char *out, size_t n)
{
    size_t j = 0;
    for (; *in && j + 1 < n; in++) {
        char c = *in >= 'A' && *in <= 'Z' ? (char)(*in - 'A' + 'a') : *in;
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ':' || c == '_';
        out[j++] = ok ? c : '_';
    }
    out[j] = 0;
    size_t s = 0;
    while (out[s] == '_')
        s++;
    while (j > s && out[j - 1] == '_')
        out[--j] = 0;
    memmove(out, out + s, j - s + 1);
}

/* The chip label: <bus>_<device> of the device link, else the name file
 * (its text, NULL when unreadable), else hwmonN (preferences as
 * node_exporter's hwmonName). */
static int hw_chip(const char *dir, const char *name_file, char *chip, size_t n)
{
    char path[CORE_PATH_MAX + 64], real[PATH_MAX];
    snprintf(path, sizeof path, "%s/device", dir);
    if (realpath(path, real)) {
        char *name = strrchr(real, '/');
        if (name && name > real) {
            *name++ = 0;
            char *bus = strrchr(real, '/');
            char cname[128], cbus[128];
            hw_clean(name, cname, sizeof cname);
            hw_clean(bus ? bus + 1 : real, cbus, sizeof cbus);
            if (cname[0] && cbus[0]) {
                snprintf(chip, n, "%s_%s", cbus, cname);
                return 0;
            }
            if (cname[0]) {
                core_sncpy(chip, n, cname);
                return 0;
            }
        }
    }
    if (name_file) {
        hw_clean(name_file, chip, n);
        if (chip[0])
            return 0;
    }
    if (!realpath(dir, real))
        return -errno;
    const char *base = strrchr(real, '/');
    hw_clean(base ? base + 1 : real, chip, n);
    return chip[0] ? 0 : -EINVAL;
}

static const char *const hw_types[] = {"vrm", "beep_enable", "update_interval", "in", "cpu", "fan", "pwm",
                                       "temp", "curr", "power", "energy", "humidity", "intrusion"}; /* 1.5's list: no freq yet */

/* <type><id>_<property>, as node_exporter's ^([^0-9]+)([0-9]*)?(_(.+))?$ */
typedef struct hw_file {
    char type[32], id[16], sensor[48], prop[64];
} hw_file;

static bool hw_explode(const char *name, hw_file *f)
{
    const char *p = name;
    while (*p && (*p < '0' || *p > '9'))
        p++;
    size_t tl = (size_t)(p - name);
    const char *ids = p;
    while (*p >= '0' && *p <= '9')
        p++;
    size_t il = (size_t)(p - ids);
    if (tl == 0 || tl >= sizeof f->type || il >= sizeof f->id)
        return false;
    if (*p && (*p != '_' || !p[1]))
        return false;
    if (il == 0 && *p) /* the type then ran up to the end */
        return false;
    memcpy(f->type, name, tl);
    f->type[tl] = 0;
    memcpy(f->id, ids, il);
    f->id[il] = 0;
    core_sncpy(f->prop, sizeof f->prop, *p ? p + 1 : "");
    bool known = false;
    for (size_t i = 0; i < sizeof hw_types / sizeof hw_types[0]; i++)
        known |= !strcmp(hw_types[i], f->type);
    if (!known)
        return false;
    snprintf(f->sensor, sizeof f->sensor, "%s%d", f->type, il ? atoi(f->id) : 0);
    return true;
}

/* A sensor value as node_exporter reads it: the file without newlines. */
static bool hw_value(nx_ctx *x, const char *dir, const char *file, char *out, size_t n)
{
    ssize_t len = nx_read(x, &x->rd2, dir, "%s", file);
    if (len < 0)
        return false;
    const char *s = x->rd2.p, *e = x->rd2.p + len;
    while (s < e && *s == '\n')
        s++;
    while (e > s && e[-1] == '\n')
        e--;
    size_t k = (size_t)(e - s) < n - 1 ? (size_t)(e - s) : n - 1;
    memcpy(out, s, k);
    out[k] = 0;
    return true;
}

static bool hw_float(const char *s, double *v)
{
    char *end;
    if (!*s)
        return false;
    *v = strtod(s, &end);
    return *end == 0;
}

static void hw_emit(nx_ctx *x, const char *name, int type, const char *help, double v,
                    const char *chip, const char *sensor)
{
    nx_sample(x, nx_family_dyn(x, name, type, help), v, 2, "chip", chip, "sensor", sensor);
}

/* The unit suffix, scale, type and help node_exporter gives element el of
 * sensor type t (its updateHwmon, in its order). */
typedef struct hw_kind {
    const char *unit, *help;
    double scale;
    int type;
} hw_kind;

static bool is(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

static hw_kind hw_kind_of(char *help, size_t n, const char *t, const char *el)
{
    hw_kind k = {"", help, 1, NX_GAUGE};
    if (is(el, "fault") || is(el, "alarm")) {
        snprintf(help, n, "Hardware sensor %s status (%s)", el, t);
    } else if (is(el, "beep")) {
        k.unit = "_enabled", k.help = "Hardware monitor sensor has beeping enabled";
    } else if (is(t, "in") || is(t, "cpu")) {
        k.unit = "_volts", k.scale = 0.001; snprintf(help, n, "Hardware monitor for voltage (%s)", el);
    } else if (is(t, "temp") && !is(el, "type")) {
        k.unit = "_celsius", k.scale = 0.001; snprintf(help, n, "Hardware monitor for temperature (%s)", el);
    } else if (is(t, "curr")) {
        k.unit = "_amps", k.scale = 0.001; snprintf(help, n, "Hardware monitor for current (%s)", el);
    } else if (is(t, "energy")) {
        k.unit = "_joule_total", k.scale = 1e-6, k.type = NX_COUNTER;
        snprintf(help, n, "Hardware monitor for joules used so far (%s)", el);
    } else if (is(t, "power") && is(el, "accuracy")) {
        k.scale = 1e-6, k.help = "Hardware monitor power meter accuracy, as a ratio";
    } else if (is(t, "power") &&
               (is(el, "average_interval") || is(el, "average_interval_min") || is(el, "average_interval_max"))) {
        k.unit = "_seconds", k.scale = 0.001;
        snprintf(help, n, "Hardware monitor power usage update interval (%s)", el);
    } else if (is(t, "power")) {
        k.unit = "_watt", k.scale = 1e-6; snprintf(help, n, "Hardware monitor for power usage in watts (%s)", el);
    } else if (is(t, "humidity")) {
        k.scale = 1e-6;
        snprintf(help, n, "Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the humidity as a "
                          "percentage) (%s)", el);
    } else if (is(t, "fan") && (is(el, "input") || is(el, "min") || is(el, "max") || is(el, "target"))) {
        k.unit = "_rpm"; snprintf(help, n, "Hardware monitor for fan revolutions per minute (%s)", el);
    } else {
        snprintf(help, n, "Hardware monitor %s element %s", t, el);
    }
    return k;
}

/* beep_enable, vrm and update_interval: one value each, from the bare file. */
static void hw_special(nx_ctx *x, const hw_file *f, const char *val, const char *chip)
{
    double v = 0;
    bool num = hw_float(val, &v);
    if (f->prop[0])
        return;
    if (is(f->type, "beep_enable"))
        hw_emit(x, "node_hwmon_beep_enabled", NX_GAUGE, "Hardware beep enabled", is(val, "1"), chip, f->sensor);
    else if (num && is(f->type, "vrm"))
        hw_emit(x, "node_hwmon_voltage_regulator_version", NX_GAUGE, "Hardware voltage regulator", v, chip,
                f->sensor);
    else if (num && is(f->type, "update_interval"))
        hw_emit(x, "node_hwmon_update_interval_seconds", NX_GAUGE, "Hardware monitor update interval", v * 0.001,
                chip, f->sensor);
}

/* One sensor file; emits its sample as node_exporter's updateHwmon does. */
static void hw_sensor(nx_ctx *x, const char *dir, const char *chip, const char *file)
{
    hw_file f;
    char val[128], base[96], name[128];
    if (!hw_explode(file, &f) || !hw_value(x, dir, file, val, sizeof val))
        return;
    const char *el = f.prop, *t = f.type;
    if (is(el, "label")) { /* nx_sample writes invalid UTF-8 as U+FFFD, as node_exporter */
        nx_sample(x, nx_family(x, "node_hwmon_sensor_label", NX_GAUGE, "Label for given chip and sensor"), 1, 3,
                  "chip", chip, "label", val, "sensor", f.sensor);
        return;
    }
    if (is(t, "beep_enable") || is(t, "vrm") || is(t, "update_interval")) {
        hw_special(x, &f, val, chip);
        return;
    }
    double v;
    if (!hw_float(val, &v))
        return;
    if (is(el, "input")) {
        /* "_input" only when the bare <type><id> file holds a value too */
        char bare[64];
        snprintf(bare, sizeof bare, "%s%s", f.type, f.id);
        snprintf(base, sizeof base, "node_hwmon_%s%s", t, hw_value(x, dir, bare, val, sizeof val) ? "_input" : "");
    } else if (el[0]) {
        char cel[64];
        hw_clean(el, cel, sizeof cel);
        snprintf(base, sizeof base, "node_hwmon_%s_%s", t, cel);
    } else {
        snprintf(base, sizeof base, "node_hwmon_%s", t);
    }
    char help[256];
    hw_kind k = hw_kind_of(help, sizeof help, t, el);
    snprintf(name, sizeof name, "%s%s", base, k.unit);
    /* Go multiplies by 0.001 and divides by 1e6: the same operations give the same bits */
    double out = k.scale == 1e-6 ? v / 1000000.0 : k.scale == 0.001 ? v * 0.001 : v;
    hw_emit(x, name, k.type, k.help, out, chip, f.sensor);
}

static void hw_dir(nx_ctx *x, const char *dir, const char *chip, const char *skip_dir)
{
    struct dirent **v;
    int n = nxs_scan(dir, ".", "", false, &v);
    if (n < 0)
        return;
    for (int i = 0; i < n; i++) {
        char other[CORE_PATH_MAX + 300];
        /* a file the device dir has too: node_exporter keeps the device's value */
        if (skip_dir) {
            snprintf(other, sizeof other, "%s/%s", skip_dir, v[i]->d_name);
            if (access(other, F_OK) == 0)
                continue;
        }
        hw_sensor(x, dir, chip, v[i]->d_name);
    }
    nxs_names_free(v, n);
}

NX_COLLECTOR(hwmon)
{
    struct dirent **v;
    int n = nxs_scan(x->sys, "class/hwmon", "", false, &v);
    if (n < 0)
        return n;
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char dir[CORE_PATH_MAX + 300], dev[CORE_PATH_MAX + 310], chip[160], raw[128];
        struct stat st;
        snprintf(dir, sizeof dir, "%s/class/hwmon/%s", x->sys, v[i]->d_name);
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        bool named = nx_read_str(x, dir, raw, sizeof raw, "name") == 0;
        int r = hw_chip(dir, named ? raw : NULL, chip, sizeof chip);
        if (r < 0) {
            rc = r;
            continue;
        }
        if (named) {
            char clean[128];
            hw_clean(raw, clean, sizeof clean);
            if (clean[0])
                nx_sample(x, nx_family(x, "node_hwmon_chip_names", NX_GAUGE,
                                       "Annotation metric for human-readable chip names"),
                          1, 2, "chip", chip, "chip_name", clean);
        }
        snprintf(dev, sizeof dev, "%s/device", dir);
        bool has_dev = stat(dev, &st) == 0 && S_ISDIR(st.st_mode);
        hw_dir(x, dir, chip, has_dev ? dev : NULL);
        if (has_dev)
            hw_dir(x, dev, chip, NULL);
    }
    nxs_names_free(v, n);
    return rc;
}

/* ---- powersupplyclass ------------------------------------------------------------- */
typedef struct ps_attr {
    const char *file, *metric;
    double div;
} ps_attr;

/* node_exporter 1.5's attributes: plain numbers, micro-units (/1e6), tenths of a degree (/10) */
static const ps_attr ps_attrs[] = {
    {"authentic", "authentic", 1}, {"calibrate", "calibrate", 1}, {"capacity", "capacity", 1},
    {"capacity_alert_max", "capacity_alert_max", 1}, {"capacity_alert_min", "capacity_alert_min", 1},
    {"cycle_count", "cyclecount", 1}, {"online", "online", 1}, {"present", "present", 1},
    {"time_to_empty_now", "time_to_empty_seconds", 1}, {"time_to_full_now", "time_to_full_seconds", 1},
    {"current_boot", "current_boot", 1e6}, {"current_max", "current_max", 1e6},
    {"current_now", "current_ampere", 1e6}, {"energy_empty", "energy_empty", 1e6},
    {"energy_empty_design", "energy_empty_design", 1e6}, {"energy_full", "energy_full", 1e6},
    {"energy_full_design", "energy_full_design", 1e6}, {"energy_now", "energy_watthour", 1e6},
    {"voltage_boot", "voltage_boot", 1e6}, {"voltage_max", "voltage_max", 1e6},
    {"voltage_max_design", "voltage_max_design", 1e6}, {"voltage_min", "voltage_min", 1e6},
    {"voltage_min_design", "voltage_min_design", 1e6}, {"voltage_now", "voltage_volt", 1e6},
    {"voltage_ocv", "voltage_ocv", 1e6}, {"charge_control_limit", "charge_control_limit", 1e6},
    {"charge_control_limit_max", "charge_control_limit_max", 1e6}, {"charge_counter", "charge_counter", 1e6},
    {"charge_empty", "charge_empty", 1e6}, {"charge_empty_design", "charge_empty_design", 1e6},
    {"charge_full", "charge_full", 1e6}, {"charge_full_design", "charge_full_design", 1e6},
    {"charge_now", "charge_ampere", 1e6}, {"charge_term_current", "charge_term_current", 1e6},
    {"constant_charge_current", "constant_charge_current", 1e6},
    {"constant_charge_current_max", "constant_charge_current_max", 1e6},
    {"constant_charge_voltage", "constant_charge_voltage", 1e6},
    {"constant_charge_voltage_max", "constant_charge_voltage_max", 1e6},
    {"precharge_current", "precharge_current", 1e6}, {"input_current_limit", "input_current_limit", 1e6},
    {"power_now", "power_watt", 1e6}, {"temp", "temp_celsius", 10}, {"temp_alert_max", "temp_alert_max_celsius", 10},
    {"temp_alert_min", "temp_alert_min_celsius", 10}, {"temp_ambient", "temp_ambient_celsius", 10},
    {"temp_ambient_max", "temp_ambient_max_celsius", 10}, {"temp_ambient_min", "temp_ambient_min_celsius", 10},
    {"temp_max", "temp_max_celsius", 10}, {"temp_min", "temp_min_celsius", 10},
};

/* the info family's string attributes, sorted by label name (power_supply is added in order) */
static const char *const ps_info[] = {"capacity_level", "charge_type", "health", "manufacturer", "model_name",
                                      "scope", "serial_number", "status", "technology", "type", "usb_type"};
#define PS_NINFO (int)(sizeof ps_info / sizeof ps_info[0])

/* sysfs text trimmed of surrounding blanks, as procfs's SysReadFile does */
static bool ps_read(nx_ctx *x, const char *dir, const char *file, char *out, size_t n)
{
    ssize_t len = nx_read(x, &x->rd2, dir, "%s", file);
    if (len < 0)
        return false;
    const char *s = x->rd2.p, *e = x->rd2.p + len;
    while (s < e && (*s == ' ' || *s == '\t' || *s == '\n'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n'))
        e--;
    size_t k = (size_t)(e - s) < n - 1 ? (size_t)(e - s) : n - 1;
    memcpy(out, s, k);
    out[k] = 0;
    return true;
}

static void ps_supply(nx_ctx *x, const char *dir, const char *name)
{
    char val[128];
    for (size_t i = 0; i < sizeof ps_attrs / sizeof ps_attrs[0]; i++) {
        const ps_attr *at = &ps_attrs[i];
        char *end, metric[96], help[160];
        if (!ps_read(x, dir, at->file, val, sizeof val) || !val[0])
            continue;
        errno = 0;
        long long v = strtoll(val, &end, 10);
        if (*end || errno)
            continue;
        snprintf(metric, sizeof metric, "node_power_supply_%s", at->metric);
        snprintf(help, sizeof help, "%s value of /sys/class/power_supply/<power_supply>.", at->metric);
        nx_sample(x, nx_family_dyn(x, metric, NX_GAUGE, help), at->div == 1 ? (double)v : (double)v / at->div, 1,
                  "power_supply", name);
    }
    /* label values must outlive nx_sample_v only; they live in vals
     * (nx_sample_v writes invalid UTF-8 as U+FFFD, as node_exporter) */
    char vals[PS_NINFO][128];
    const char *kv[2 * (PS_NINFO + 1)];
    int k = 0;
    bool named = false;
    for (int i = 0; i < PS_NINFO; i++) {
        if (!named && strcmp(ps_info[i], "power_supply") > 0) {
            kv[2 * k] = "power_supply";
            kv[2 * k + 1] = name;
            k++;
            named = true;
        }
        if (!ps_read(x, dir, ps_info[i], vals[i], sizeof vals[i]) || !vals[i][0])
            continue;
        kv[2 * k] = ps_info[i];
        kv[2 * k + 1] = vals[i];
        k++;
    }
    if (!named) {
        kv[2 * k] = "power_supply";
        kv[2 * k + 1] = name;
        k++;
    }
    nx_sample_v(x, nx_family(x, "node_power_supply_info", NX_GAUGE, "info of /sys/class/power_supply/<power_supply>."),
                1, k, kv);
}

NX_COLLECTOR(powersupplyclass)
{
    struct dirent **v;
    int n = nxs_scan(x->sys, "class/power_supply", "", false, &v);
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++) {
        char dir[CORE_PATH_MAX + 300];
        snprintf(dir, sizeof dir, "%s/class/power_supply/%s", x->sys, v[i]->d_name);
        /* the default --collector.powersupply.ignored-supplies is ^$: none */
        ps_supply(x, dir, v[i]->d_name);
    }
    nxs_names_free(v, n);
    return 0;
}

/* ---- edac ------------------------------------------------------------------------- */
NX_COLLECTOR(edac)
{
    struct dirent **v;
    int n = nxs_scan(x->sys, "devices/system/edac/mc", "mc", true, &v);
    if (n < 0) /* node_exporter globs: no edac dir is no controllers, not a failure */
        return n == -ENOENT ? 0 : n;
    int fce = nx_family(x, "node_edac_correctable_errors_total", NX_COUNTER, "Total correctable memory errors.");
    int fue = nx_family(x, "node_edac_uncorrectable_errors_total", NX_COUNTER, "Total uncorrectable memory errors.");
    int frce = nx_family(x, "node_edac_csrow_correctable_errors_total", NX_COUNTER,
                         "Total correctable memory errors for this csrow.");
    int frue = nx_family(x, "node_edac_csrow_uncorrectable_errors_total", NX_COUNTER,
                         "Total uncorrectable memory errors for this csrow.");
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const char *mc = v[i]->d_name, *ctl = mc + 2;
        uint64_t ce, ue, cen, uen;
        if ((rc = nx_read_u64(x, x->sys, &ce, "devices/system/edac/mc/%s/ce_count", mc)) < 0 ||
            (rc = nx_read_u64(x, x->sys, &ue, "devices/system/edac/mc/%s/ue_count", mc)) < 0 ||
            (rc = nx_read_u64(x, x->sys, &cen, "devices/system/edac/mc/%s/ce_noinfo_count", mc)) < 0 ||
            (rc = nx_read_u64(x, x->sys, &uen, "devices/system/edac/mc/%s/ue_noinfo_count", mc)) < 0)
            break;
        nx_sample(x, fce, (double)ce, 1, "controller", ctl);
        nx_sample(x, fue, (double)ue, 1, "controller", ctl);
        nx_sample(x, frce, (double)cen, 2, "controller", ctl, "csrow", "unknown");
        nx_sample(x, frue, (double)uen, 2, "controller", ctl, "csrow", "unknown");
        char rel[300];
        snprintf(rel, sizeof rel, "devices/system/edac/mc/%s", mc);
        struct dirent **r;
        int m = nxs_scan(x->sys, rel, "csrow", true, &r);
        for (int j = 0; j < m && rc == 0; j++) {
            const char *row = r[j]->d_name + 5;
            if ((rc = nx_read_u64(x, x->sys, &ce, "%s/%s/ce_count", rel, r[j]->d_name)) < 0 ||
                (rc = nx_read_u64(x, x->sys, &ue, "%s/%s/ue_count", rel, r[j]->d_name)) < 0)
                break;
            nx_sample(x, frce, (double)ce, 2, "controller", ctl, "csrow", row);
            nx_sample(x, frue, (double)ue, 2, "controller", ctl, "csrow", row);
        }
        if (m > 0)
            nxs_names_free(r, m);
    }
    nxs_names_free(v, n);
    return rc;
}
