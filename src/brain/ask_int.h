/* ask_int.h: the parts of `ask` (POST /v1/ask, `ippoc ask`), shared by
 * ask.c (the entry, the answer's JSON and the model), ask_intent.c
 * (understanding the question, pure), ask_gather.c (records from memory, heal
 * and knowledge, with their citations) and ask_answer.c (the answer of each
 * kind made from templates). Internal to src/brain and its tests. */
#ifndef IPPOC_BRAIN_ASK_INT_H
#define IPPOC_BRAIN_ASK_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "brain/brain_int.h"

/* ---- the question (ask_intent.c) ------------------------------------------- */
enum { ASK_WHY, ASK_CHANGES, ASK_DISK, ASK_HISTORY, ASK_STATUS, ASK_GENERIC, ASK_KINDS };
/* "why", "changes", "disk", "history", "status", "generic" */
extern const char *const brain_ask_kinds[];

#define ASK_QUESTION_MAX 1024 /* bytes */

typedef struct brain_ask_q {
    int kind;                /* ASK_* */
    char component[64];      /* a service, process or unit named; "" none */
    bool configured;         /* component is one of the configured services */
    char event[16];          /* what happened to it: "restart", "crash", "fail", "stop", "" */
    char path[256];          /* an absolute path named (disk, changes); "" none */
    bool io;                 /* disk: I/O (reads, writes) rather than space */
    bool before;             /* changes: "before X" (else since / in a span) */
    int64_t at_ms;           /* a moment named ("at 03:12", "2 hours ago"); 0 none */
    int64_t from_ms, to_ms;  /* a span named ("yesterday", "since 02:00", "last hour"); 0 none */
    char time_text[64];      /* the words that named the time */
} brain_ask_q;

/* Understands question at now_ms (local time for clock times) given the
 * configured service names: 0 and *out, or -EINVAL with err (empty, too
 * long, control bytes). Pure: no I/O, any thread. "03:12" is the most
 * recent past 03:12 local time. */
int brain_ask_parse(const char *question, int64_t now_ms, const char *const *services, int nservices,
                    brain_ask_q *out, char *err, size_t errlen);

/* ---- records (ask_gather.c) ------------------------------------------------- */
typedef struct ask_ctx {
    brain *b;
    const brain_mind *m;
    brain_ask_q q;
    const char *question;
    int64_t now_ms;
    int64_t deadline_mono;   /* for slow collectors (directory sizes) */
    json_t *records;         /* [{"ref","type","id","ts","summary"}] in citation order */
    json_t *notes;           /* what could not be read, as strings */
    json_t *services;        /* heal's services JSON array (or []) */
    json_t *incidents;       /* heal's incidents JSON array, newest first (or []) */
    char dpkg_log[256];
    logs_watch *logs;
} ask_ctx;

/* Adds a record (a ref already there is not added twice); returns its ref
 * (valid while ctx->records lives). id: integer id or NULL with sid. */
const char *ask_rec(ask_ctx *c, const char *type, int64_t id, const char *sid, int64_t ts, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Events of type (exact or "x.*") in [from, to], newest first, source (NULL:
 * any) only; at most limit. The caller frees with mem_events_free. */
int ask_events(ask_ctx *c, const char *type, const char *source, int64_t from, int64_t to, int limit,
               mem_event **out, size_t *n);
/* An event's record: "event:ID" with a summary made from its type and payload. */
const char *ask_event_rec(ask_ctx *c, const mem_event *e);
/* Heal's incident's record ("incident:N") with its diagnosis, if any. */
const char *ask_incident_rec(ask_ctx *c, const json_t *inc);
/* The diagnosis of a heal incident JSON (its "diagnosis" member, else the
 * brain's): a new reference or NULL. */
json_t *ask_incident_diagnosis(ask_ctx *c, const json_t *inc);
/* Knowledge chunks for the question (none without a store). Returns how many. */
int ask_chunks(ask_ctx *c, const char *query, int limit, json_t *refs);
/* Error-level log templates of source last seen in [from, to]. Returns how many. */
int ask_templates(ask_ctx *c, const char *source, int64_t from, int64_t to, json_t *refs);
/* Packages (dpkg) changed in [from, to]. Returns how many. */
int ask_packages(ask_ctx *c, int64_t from, int64_t to, json_t *refs, json_t *texts);
/* Every series of family name: a malloc'd copy (free), count in *n. */
mem_series_info *ask_series(ask_ctx *c, const char *name, size_t *n);
/* Sizes of the children of dir on its own filesystem within the deadline:
 * appends {"path","bytes","partial"} to out. */
void ask_dir_sizes(ask_ctx *c, const char *dir, json_t *out);

/* ---- text helpers ----------------------------------------------------------- */
/* "03:12:04" (today), else "2026-12-04 03:12:04", local time. */
void ask_fmt_time(int64_t ms, int64_t now_ms, char *buf, size_t n);
void ask_fmt_bytes(double b, char *buf, size_t n);
/* Appends one sentence to parts, followed by " [ref, ref]" for refs (a
 * JSON array of strings; NULL or empty: no citation). */
void ask_say(json_t *parts, const json_t *refs, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- the answers (ask_answer.c): fills the text, gathering as it goes ---- */
/* Appends the answer's sentences (strings) to parts. */
void ask_answer(ask_ctx *c, json_t *parts);

#endif
