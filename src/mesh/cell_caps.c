/* cell_caps.c: the capability record a cell advertises as its swim member
 * metadata (roles, CPUs, memory, free disk, GPU, language model): measured
 * here, and its 13-byte wire form (cell_int.h). */
#include <errno.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "mesh/cell_int.h"

void cell_caps_local(const char *state_dir, bool llm, uint32_t roles, cell_caps *c)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    struct statvfs v;
    c->roles = roles;
    c->cpus = cpus > 0 ? (uint32_t)cpus : 1;
    c->memory_mb = pages > 0 && psz > 0 ? (uint32_t)((uint64_t)pages * (uint64_t)psz >> 20) : 0;
    c->disk_gb = statvfs(state_dir, &v) == 0 ? (uint32_t)(((uint64_t)v.f_bavail * v.f_frsize) >> 30) : 0;
    c->gpu = access("/dev/nvidia0", F_OK) == 0 || access("/dev/kfd", F_OK) == 0;
    c->llm = llm;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

size_t cell_caps_encode(const cell_caps *c, uint8_t out[CELL_CAPS_BYTES])
{
    out[0] = 1;
    out[1] = (uint8_t)(c->roles & MESH_ROLE_ALL);
    uint32_t cpus = c->cpus > 65535 ? 65535 : c->cpus;
    out[2] = (uint8_t)(cpus >> 8), out[3] = (uint8_t)cpus;
    put32(out + 4, c->memory_mb);
    put32(out + 8, c->disk_gb);
    out[12] = (uint8_t)((c->gpu ? 1 : 0) | (c->llm ? 2 : 0));
    return CELL_CAPS_BYTES;
}

int cell_caps_decode(const uint8_t *p, size_t n, cell_caps *c)
{
    if (n < CELL_CAPS_BYTES || p[0] != 1) /* a later version may append fields */
        return -EBADMSG;
    c->roles = p[1] & MESH_ROLE_ALL;
    c->cpus = (uint32_t)p[2] << 8 | p[3];
    c->memory_mb = get32(p + 4);
    c->disk_gb = get32(p + 8);
    c->gpu = p[12] & 1;
    c->llm = (p[12] & 2) != 0;
    return 0;
}
