/* api.h: the cell's HTTP/JSON API (libmicrohttpd, its own threads).
 *
 *   GET /v1/status                 version, uptime, host, collectors, own CPU/RSS
 *   GET /v1/metrics                list of series
 *   GET /v1/metrics/{name}         series points (?from&to&step)
 *   GET /v1/events                 event query (?from&to&type&severity&after&limit)
 *   GET /v1/events/stream          server-sent events
 *   GET /metrics                   Prometheus text format 0.0.4
 *
 * Every error is JSON: {"error":{"code":"...","message":"..."}} with a 4xx/5xx
 * status. A non-loopback listen address requires the configured bearer token.
 *
 * Threads: the API reads memory through its thread-safe read functions and the
 * daemon's status through the status_json hook, which must be thread-safe. */
#ifndef IPPOC_API_H
#define IPPOC_API_H

#include "core/core.h"
#include "memory/memory.h"

typedef struct api api_t;

typedef struct api_hooks {
    void *ud;
    /* Returns a malloc'd JSON object text for /v1/status. Thread-safe. */
    char *(*status_json)(void *ud);
} api_hooks;

/* Binds cfg->api_listen (port 0 = any free port) and starts serving. */
int api_start(api_t **out, const core_config *cfg, mem_t *mem, const api_hooks *hooks,
              char *err, size_t errlen);
/* The port actually bound. */
int api_port(const api_t *a);
/* Stops accepting, ends open streams, joins the threads. */
void api_stop(api_t *a);

/* Exposed for unit tests: Prometheus name of a series family
 * ("cpu.usage_percent" -> "ippoc_cpu_usage_percent"). */
void api_prom_name(const char *family, char *out, size_t n);

#endif
