/* logs.h: the log module's public face.
 *
 * Two parts:
 *  - the template miner (drain.c, mask.c, logformat.c): a Drain-style online
 *    parser that turns message bodies into templates ("Connection from <*>
 *    closed"), with built-in masks for numbers, hex, IPs, paths and UUIDs,
 *    optional extra PCRE2 masks, and a Loghub-style header format that splits
 *    a raw line into fields and its Content. No I/O, no threads of its own:
 *    one miner is used by one thread at a time.
 *  - the watch (follow.c, journal.c, logwatch.c, logs_conf.c): follows
 *    service logs (supervised services' captured output, configured files
 *    with rotation and truncation handled through inotify, the systemd
 *    journal), mines each source's templates, keeps counts and rates, and
 *    reports new templates and bursts as events and series in memory.
 *
 * See /work/notes/brain-contract.md (issue 10) for the events and series. */
#ifndef IPPOC_LOGS_H
#define IPPOC_LOGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* ---- template miner ------------------------------------------------------- */
typedef struct logs_miner logs_miner;

typedef struct logs_miner_opts {
    double sim;       /* similarity threshold, 0..1 (0: the default, 1; classic 0.5) */
    int depth;        /* prefix tree depth (0: the default, 4) */
    int max_children; /* per tree node (0: the default, 100) */
    int max_templates;/* oldest-unused templates are forgotten past this (0: unlimited) */
    int variants;     /* templates that differ in one position only become one, with a
                       * <*> there, once there are this many (0: the default, 5; 1: never) */
    int sim_tokens;   /* a similarity below 1 applies to messages of at least this many
                       * tokens; shorter ones need all constant tokens equal (0: the default) */
    bool classic;     /* Drain exactly as published (blank-separated tokens, no built-in
                       * masks, no merging): bench/logparse's check of the scorer */
} logs_miner_opts;

/* o may be NULL (defaults). 0 or -errno with a reason in err. */
int logs_miner_new(const logs_miner_opts *o, logs_miner **out, char *err, size_t errlen);
/* Adds an extra mask (PCRE2 syntax, JIT-compiled), applied before the
 * built-in ones in the order added: each match becomes "<*>". 0, or -EINVAL
 * with the pattern's error and offset in err. */
int logs_miner_add_mask(logs_miner *m, const char *pattern, char *err, size_t errlen);
/* Masks, tokenises and clusters one message body (any bytes; invalid UTF-8,
 * NULs and very long lines are handled). Returns the template id (>= 0, ids
 * are dense and stable) or -errno; *is_new (may be NULL) says the template
 * was created by this call. */
int logs_miner_add(logs_miner *m, const char *msg, size_t len, bool *is_new);
/* The current text of template id ("" for an unknown id); valid until the
 * next logs_miner_add. */
const char *logs_miner_template(const logs_miner *m, int id);
int logs_miner_count(const logs_miner *m); /* templates so far */
/* The id that id stands for now: itself, the earlier id its template merged
 * into (once two templates became equal), or -1 when forgotten (LRU). */
int logs_miner_resolve(const logs_miner *m, int id);
void logs_miner_free(logs_miner *m);

/* "error", "warning" or "info": the level a line states (see the contract). */
const char *logs_line_level(const char *line, size_t len);

/* A Loghub-style header format ("<Date> <Time> <Level> <Component>: <Content>"). */
typedef struct logs_format logs_format;
int logs_format_new(const char *format, logs_format **out, char *err, size_t errlen);
/* Splits line: *content and *clen get the Content field. 0, or -EINVAL when the
 * line does not match (the caller may then use the whole line). */
int logs_format_content(const logs_format *f, const char *line, size_t len, const char **content, size_t *clen);
void logs_format_free(logs_format *f);

/* ---- watch ------------------------------------------------------------------ */
typedef struct logs_watch logs_watch;
struct mem;
struct uv_loop_s;

/* Checks [logs] and the log keys of [service.X]. 0 or -EINVAL with "FILE:LINE: reason". */
int logs_config_check(const core_config *cfg, char *err, size_t errlen);
/* Loop thread. */
int logs_watch_new(struct uv_loop_s *loop, const core_config *cfg, struct mem *mem, logs_watch **out, char *err,
                   size_t errlen);
int logs_watch_reconfigure(logs_watch *w, const core_config *cfg, char *err, size_t errlen);
void logs_watch_tick(logs_watch *w, int64_t now_ms); /* series, rates, bursts */
void logs_watch_free(logs_watch *w);
/* Any thread: {"sources":[{"source","templates":[{"id","template","level",
 * "count","rate","first_seen","last_seen"}]}]}; source NULL: every source.
 * malloc'd; NULL on OOM or an unknown source. */
char *logs_watch_json(logs_watch *w, const char *source);

#endif
