/* kbridge.c: the kernel bridge as a sensor source. When [sense] source is
 * auto (and the device exists, is readable and speaks a schema we know) or
 * kernel, the cpu, load, memory and processes groups take what the snapshot
 * of /dev/ippoc covers from it (see drivers/kernel-bridge/README.md) and
 * label those series source="kernel"; everything the snapshot does not carry
 * (forks, interrupts, context switches, swap, slab, ...) still comes from
 * procfs, unlabelled as before.
 *
 * The device builds one snapshot per open, so it is opened, read to EOF and
 * closed once per tick (on the first collector that wants it) and the parsed
 * result is shared. A failed read or parse at runtime is logged once and
 * that tick falls back to procfs; sense_source() reports it. */
#include "sense/sense_int.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SN_KB_MAX_BYTES (4u << 20) /* far above any real snapshot */

/* /proc/stat order (SN_CPU_*) */
static const char *const kb_states[SN_CPU_NSTATES] = {
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice",
};

static int kb_fail(char *err, size_t n, int rc, const char *fmt, const char *a)
{
    snprintf(err, n, fmt, a);
    return rc;
}

/* An unsigned integer member of o named key ("where.key" in messages). */
static int kb_u64(const json_t *o, const char *where, const char *key, uint64_t *out, char *err,
                  size_t n)
{
    const json_t *v = json_object_get(o, key);
    char path[96];
    snprintf(path, sizeof path, "%s%s%s", where, where[0] ? "." : "", key);
    if (!v)
        return kb_fail(err, n, -EINVAL, "missing %s", path);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return kb_fail(err, n, -EINVAL, "%s is not a non-negative integer", path);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int kb_obj(const json_t *o, const char *key, const json_t **out, char *err, size_t n)
{
    *out = json_object_get(o, key);
    if (!*out)
        return kb_fail(err, n, -EINVAL, "missing %s", key);
    if (!json_is_object(*out))
        return kb_fail(err, n, -EINVAL, "%s is not an object", key);
    return 0;
}

/* The ten cpu states of one per_cpu entry or of the total. */
static int kb_cpu_times(const json_t *o, const char *where, uint64_t *v, char *err, size_t n)
{
    for (int i = 0; i < SN_CPU_NSTATES; i++) {
        int r = kb_u64(o, where, kb_states[i], &v[i], err, n);
        if (r)
            return r;
    }
    return 0;
}

static int kb_parse_cpu(const json_t *cpu, sn_kb_snap *o, char *err, size_t n)
{
    const json_t *per = json_object_get(cpu, "per_cpu");
    if (!per)
        return kb_fail(err, n, -EINVAL, "missing %s", "cpu.per_cpu");
    if (!json_is_array(per))
        return kb_fail(err, n, -EINVAL, "%s is not an array", "cpu.per_cpu");
    size_t cnt = json_array_size(per);
    if (cnt > SN_KB_MAX_CPUS)
        return kb_fail(err, n, -EINVAL, "%s: too many cpus", "cpu.per_cpu");
    if ((int)cnt > o->capcpus) {
        sn_kb_cpu *c = realloc(o->cpus, cnt * sizeof *c);
        if (!c)
            return kb_fail(err, n, -ENOMEM, "%s", "out of memory");
        o->cpus = c;
        o->capcpus = (int)cnt;
    }
    for (size_t i = 0; i < cnt; i++) {
        const json_t *e = json_array_get(per, i);
        char where[48];
        snprintf(where, sizeof where, "cpu.per_cpu[%zu]", i);
        if (!json_is_object(e))
            return kb_fail(err, n, -EINVAL, "%s is not an object", where);
        uint64_t id;
        int r = kb_u64(e, where, "cpu", &id, err, n);
        if (!r && id >= SN_KB_MAX_CPUS)
            r = kb_fail(err, n, -EINVAL, "%s.cpu out of range", where);
        if (!r)
            r = kb_cpu_times(e, where, o->cpus[i].v, err, n);
        if (r)
            return r;
        o->cpus[i].cpu = (int)id;
    }
    o->ncpus = (int)cnt;
    const json_t *tot;
    int r = kb_obj(cpu, "total", &tot, err, n);
    if (r)
        return r;
    return kb_cpu_times(tot, "cpu.total", o->total, err, n);
}

int sn_kb_parse(const char *buf, size_t len, sn_kb_snap *o, char *err, size_t n)
{
    o->schema = 0;
    o->ncpus = 0;
    json_error_t je;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, n, "bad JSON at byte %d: %s", je.position, je.text);
        return -EINVAL;
    }
    int r = 0;
    const json_t *sch = json_object_get(root, "schema");
    if (!json_is_object(root)) {
        r = kb_fail(err, n, -EINVAL, "%s", "not a JSON object");
        goto out;
    }
    if (!sch || !json_is_integer(sch)) {
        r = kb_fail(err, n, -EINVAL, "%s", sch ? "schema is not an integer" : "missing schema");
        goto out;
    }
    json_int_t sv = json_integer_value(sch);
    o->schema = sv > 0 && sv < 1000000 ? (int)sv : -1;
    if (sv != SN_KB_SCHEMA) {
        snprintf(err, n, "unknown schema %lld", (long long)sv);
        r = -EPROTONOSUPPORT;
        goto out;
    }
    const json_t *cpu, *load, *mem, *tasks;
    if ((r = kb_obj(root, "cpu", &cpu, err, n)) || (r = kb_parse_cpu(cpu, o, err, n)) ||
        (r = kb_obj(root, "load", &load, err, n)) || (r = kb_obj(root, "memory", &mem, err, n)) ||
        (r = kb_obj(root, "tasks", &tasks, err, n)))
        goto out;
    static const char *const lk[3] = {"load1", "load5", "load15"};
    for (int i = 0; i < 3; i++) {
        const json_t *v = json_object_get(load, lk[i]);
        if (!json_is_number(v) || json_number_value(v) < 0) {
            char what[32];
            snprintf(what, sizeof what, "load.%s", lk[i]);
            r = kb_fail(err, n, -EINVAL, v ? "%s is not a non-negative number" : "missing %s", what);
            goto out;
        }
        o->load[i] = json_number_value(v);
    }
    if ((r = kb_u64(mem, "memory", "total_bytes", &o->mem_total, err, n)) ||
        (r = kb_u64(mem, "memory", "free_bytes", &o->mem_free, err, n)) ||
        (r = kb_u64(mem, "memory", "available_bytes", &o->mem_available, err, n)) ||
        (r = kb_u64(mem, "memory", "cached_bytes", &o->mem_cached, err, n)) ||
        (r = kb_u64(mem, "memory", "buffers_bytes", &o->mem_buffers, err, n)) ||
        (r = kb_u64(mem, "memory", "shared_bytes", &o->mem_shared, err, n)) ||
        (r = kb_u64(mem, "memory", "swap_free_bytes", &o->swap_free, err, n)) ||
        (r = kb_u64(tasks, "tasks", "processes", &o->processes, err, n)) ||
        (r = kb_u64(tasks, "tasks", "threads", &o->threads, err, n)) ||
        (r = kb_u64(tasks, "tasks", "running", &o->running, err, n)))
        goto out;
    if (o->mem_total == 0) {
        r = kb_fail(err, n, -EINVAL, "%s", "memory.total_bytes is 0");
        goto out;
    }
out:
    if (r)
        o->ncpus = 0;
    json_decref(root);
    return r;
}

void sn_kb_snap_free(sn_kb_snap *o)
{
    free(o->cpus);
    memset(o, 0, sizeof *o);
}

int sn_kb_read(sn_kb *kb, char *why, size_t n)
{
    /* O_NONBLOCK: a fifo or anything else odd at that path never stalls the loop */
    int fd = open(kb->device, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            snprintf(why, n, "no %s", kb->device);
        else if (e == EACCES || e == EPERM)
            snprintf(why, n, "permission denied");
        else
            snprintf(why, n, "%s: %s", kb->device, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) || !(S_ISCHR(st.st_mode) || S_ISREG(st.st_mode))) {
        close(fd);
        snprintf(why, n, "%s: not a character device", kb->device);
        return -ENODEV;
    }
    size_t len = 0;
    int rc = 0;
    for (;;) {
        if (len + 1 >= kb->buf.cap) {
            if (kb->buf.cap >= SN_KB_MAX_BYTES) {
                rc = -EFBIG;
                snprintf(why, n, "%s: snapshot larger than %u bytes", kb->device, SN_KB_MAX_BYTES);
                break;
            }
            if (sn_buf_reserve(&kb->buf, kb->buf.cap ? kb->buf.cap * 2 : 16384) < 0) {
                rc = -ENOMEM;
                snprintf(why, n, "out of memory");
                break;
            }
        }
        ssize_t r = read(fd, kb->buf.p + len, kb->buf.cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            snprintf(why, n, "%s: read: %s", kb->device, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (rc)
        return rc;
    char err[160];
    rc = sn_kb_parse(kb->buf.p, len, &kb->snap, err, sizeof err);
    if (rc == -EPROTONOSUPPORT)
        snprintf(why, n, "%s", err);
    else if (rc)
        snprintf(why, n, "%s: %s", kb->device, err);
    else
        kb->schema = kb->snap.schema;
    return rc;
}

int sn_kb_setup(sense_t *s, const core_config *cfg, char *err, size_t errlen)
{
    sn_kb *kb = &s->kb;
    kb->mode = cfg->sense_source;
    core_sncpy(kb->device, sizeof kb->device, cfg->sense_device[0] ? cfg->sense_device : "/dev/ippoc");
    kb->active = false;
    kb->tick_ms = 0;
    kb->ok = false;
    kb->fail_logged = false;
    kb->why[0] = 0;
    kb->schema = 0;
    if (kb->mode == CORE_SOURCE_PROCFS) {
        snprintf(kb->why, sizeof kb->why, "source = procfs");
        return 0;
    }
    char why[160];
    int r = sn_kb_read(kb, why, sizeof why);
    if (r) {
        core_sncpy(kb->why, sizeof kb->why, why);
        if (kb->mode == CORE_SOURCE_KERNEL) {
            snprintf(err, errlen, "sense: source = kernel but %s", why);
            return r;
        }
        log_info("sense: kernel bridge not used (%s): reading procfs", why);
        return 0;
    }
    kb->active = true;
    log_info("sense: reading %s (schema %d) for cpu, load, memory and processes", kb->device,
             kb->schema);
    return 0;
}

void sn_kb_close(sn_kb *kb)
{
    sn_kb_snap_free(&kb->snap);
    free(kb->buf.p);
    kb->buf.p = NULL;
    kb->buf.cap = 0;
}

const sn_kb_snap *sn_kb_tick(sense_t *s)
{
    sn_kb *kb = &s->kb;
    if (!kb->active)
        return NULL;
    if (kb->tick_ms && kb->tick_ms == s->now_ms)
        return kb->ok ? &kb->snap : NULL;
    kb->tick_ms = s->now_ms;
    char why[160];
    int r = sn_kb_read(kb, why, sizeof why);
    kb->ok = r == 0;
    if (r) {
        kb->fallbacks++;
        core_sncpy(kb->why, sizeof kb->why, why);
        if (!kb->fail_logged)
            log_warn("sense: kernel bridge: %s: reading procfs until it recovers", why);
        kb->fail_logged = true;
        return NULL;
    }
    if (kb->fail_logged)
        log_info("sense: kernel bridge %s readable again", kb->device);
    kb->fail_logged = false;
    return &kb->snap;
}

void sense_source(sense_t *s, sense_source_info *o)
{
    sn_kb *kb = &s->kb;
    static const char *const modes[] = {"auto", "procfs", "kernel"};
    memset(o, 0, sizeof *o);
    core_sncpy(o->source, sizeof o->source, kb->active ? "kernel" : "procfs");
    core_sncpy(o->mode, sizeof o->mode, kb->mode >= 0 && kb->mode <= 2 ? modes[kb->mode] : "?");
    core_sncpy(o->device, sizeof o->device, kb->device);
    o->schema = kb->active ? kb->schema : 0;
    o->fallbacks = kb->fallbacks;
    o->last_failed = kb->active && kb->tick_ms && !kb->ok;
    if (!kb->active || kb->fallbacks)
        core_sncpy(o->reason, sizeof o->reason, kb->why);
}

const char *sense_kernel_device(sense_t *s)
{
    return s && s->kb.active ? s->kb.device : NULL;
}
