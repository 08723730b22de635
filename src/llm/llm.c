/* llm.c: the language-model client: configuration (held by reference so a
 * reload never pulls it from under a request), routing (local first, cloud
 * on failure or doubt, the best valid answer wins), token budgets (per
 * rolling hour and per incident), the record of what left the machine
 * (on_sent and STATE/llm/sent.jsonl), embeddings and the status. See llm.h. */
#include "llm/llm.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "llm/llm_int.h"

#define SENT_ROTATE (10ll << 20) /* sent.jsonl is renamed sent.jsonl.1 past this */
#define HOUR_SLOTS 60            /* the rolling hour, by minute */
#define MAX_INCIDENTS 256        /* incidents whose spending is remembered */
#define RECENT 16                /* recent fallbacks kept for the status */
#define RETRY_AFTER_MAX_MS 2000  /* a 429 asking to wait longer falls through */

typedef struct cfg_ref {
    llm_cfg c;
    int refs; /* under llm.mu */
} cfg_ref;

typedef struct prov_stats {
    long requests, failures;
    char last_error[200];
} prov_stats;

typedef struct fallback_rec {
    int64_t ts_ms;
    char purpose[32];
    char reason[160];
} fallback_rec;

struct llm {
    pthread_mutex_t mu;
    cfg_ref *cfg;
    char state_dir[CORE_PATH_MAX];
    void (*on_sent)(void *ud, const char *provider, const char *body);
    void *ud;
    atomic_bool cancel;
    /* budgets */
    struct {
        int64_t minute, tokens;
    } hour[HOUR_SLOTS];
    struct {
        uint64_t id;
        int64_t used, last_ms;
    } inc[MAX_INCIDENTS];
    /* stats */
    long requests, failures, fallbacks, refused;
    prov_stats local, cloud, mesh;
    llm_remote_fn remote; /* the fleet's reasoning peers (llm_set_remote) */
    llm_remote_avail_fn remote_avail;
    void *remote_ud;
    int remote_busy;         /* calls into the hook in flight (under mu) */
    pthread_cond_t remote_cv; /* signalled when remote_busy drops to 0 */
    fallback_rec recent[RECENT];
    int nrecent, recent_next;
    int embed_dims; /* learned from the first answer */
    pthread_mutex_t sent_mu;
};

/* ---- configuration ---------------------------------------------------------- */

int llm_config_check(const core_config *cfg, char *err, size_t errlen)
{
    llm_cfg c;
    int rc = llm_cfg_parse(cfg, &c, err, errlen);
    if (!rc)
        llm_cfg_clear(&c);
    return rc;
}

static cfg_ref *cfg_new(const core_config *cfg, char *err, size_t errlen, int *rc)
{
    cfg_ref *r = calloc(1, sizeof *r);
    if (!r) {
        *rc = -ENOMEM;
        return NULL;
    }
    *rc = llm_cfg_parse(cfg, &r->c, err, errlen);
    if (*rc) {
        free(r);
        return NULL;
    }
    r->refs = 1;
    return r;
}

static void cfg_put(llm *l, cfg_ref *r)
{
    pthread_mutex_lock(&l->mu);
    bool last = --r->refs == 0;
    pthread_mutex_unlock(&l->mu);
    if (last) {
        llm_cfg_clear(&r->c);
        free(r);
    }
}

static cfg_ref *cfg_get(llm *l)
{
    pthread_mutex_lock(&l->mu);
    cfg_ref *r = l->cfg;
    r->refs++;
    pthread_mutex_unlock(&l->mu);
    return r;
}

int llm_new(const core_config *cfg, const char *state_dir,
            void (*on_sent)(void *ud, const char *provider, const char *body), void *ud, llm **out, char *err,
            size_t errlen)
{
    *out = NULL;
    llm *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    int rc;
    l->cfg = cfg_new(cfg, err, errlen, &rc);
    if (!l->cfg) {
        free(l);
        return rc;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_mutex_init(&l->sent_mu, NULL);
    pthread_cond_init(&l->remote_cv, NULL);
    l->on_sent = on_sent;
    l->ud = ud;
    if (state_dir && *state_dir) {
        snprintf(l->state_dir, sizeof l->state_dir, "%s", state_dir);
        char dir[CORE_PATH_MAX + 8];
        snprintf(dir, sizeof dir, "%s/llm", state_dir);
        core_mkdir_p(dir, 0700); /* a failure shows when sent.jsonl cannot be written */
    }
    *out = l;
    return 0;
}

int llm_reconfigure(llm *l, const core_config *cfg, char *err, size_t errlen)
{
    int rc;
    cfg_ref *n = cfg_new(cfg, err, errlen, &rc);
    if (!n)
        return rc;
    pthread_mutex_lock(&l->mu);
    cfg_ref *old = l->cfg;
    l->cfg = n;
    pthread_mutex_unlock(&l->mu);
    cfg_put(l, old);
    return 0;
}

void llm_free(llm *l)
{
    if (!l)
        return;
    atomic_store(&l->cancel, true);
    cfg_put(l, l->cfg);
    pthread_mutex_destroy(&l->mu);
    pthread_mutex_destroy(&l->sent_mu);
    pthread_cond_destroy(&l->remote_cv);
    free(l);
}

void llm_set_remote(llm *l, llm_remote_fn fn, llm_remote_avail_fn available, void *ud)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->remote = fn;
    l->remote_avail = available;
    l->remote_ud = ud;
    while (l->remote_busy) /* the hook's owner may be freed once this returns */
        pthread_cond_wait(&l->remote_cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
}

/* Whether the mesh may be asked and a reasoning peer is reachable now (the
 * hook is called without l->mu: it takes the cell's lock). */
static bool remote_ready(llm *l, const llm_cfg *c)
{
    pthread_mutex_lock(&l->mu);
    llm_remote_fn fn = l->remote;
    llm_remote_avail_fn avail = l->remote_avail;
    void *ud = l->remote_ud;
    bool call = c->mesh && fn && avail;
    if (call)
        l->remote_busy++;
    pthread_mutex_unlock(&l->mu);
    bool ok = c->mesh && fn && (!avail || avail(ud));
    if (call) {
        pthread_mutex_lock(&l->mu);
        if (--l->remote_busy == 0)
            pthread_cond_broadcast(&l->remote_cv);
        pthread_mutex_unlock(&l->mu);
    }
    return ok;
}

bool llm_available(const llm *l)
{
    if (!l)
        return false;
    llm *m = (llm *)l;
    cfg_ref *r = cfg_get(m);
    bool ok = r->c.local[0] || r->c.cloud != LLM_CLOUD_NONE || remote_ready(m, &r->c);
    cfg_put(m, r);
    return ok;
}

char *llm_redact(const llm *l, const char *text, int *count)
{
    if (!l)
        return llm_redact_with(NULL, text, count);
    cfg_ref *c = cfg_get((llm *)l);
    char *s = llm_redact_with(c->c.redactor, text, count);
    cfg_put((llm *)l, c);
    return s;
}

/* ---- budgets ------------------------------------------------------------------ */

static int64_t hour_used(llm *l, int64_t minute)
{
    int64_t sum = 0;
    for (int i = 0; i < HOUR_SLOTS; i++)
        if (l->hour[i].minute > minute - HOUR_SLOTS)
            sum += l->hour[i].tokens;
    return sum;
}

static void hour_add(llm *l, int64_t minute, int64_t tokens)
{
    int i = (int)(minute % HOUR_SLOTS);
    if (l->hour[i].minute != minute) {
        l->hour[i].minute = minute;
        l->hour[i].tokens = 0;
    }
    l->hour[i].tokens += tokens;
}

static int inc_slot(llm *l, uint64_t id, int64_t now)
{
    int oldest = 0;
    for (int i = 0; i < MAX_INCIDENTS; i++) {
        if (l->inc[i].id == id)
            return i;
        if (l->inc[i].last_ms < l->inc[oldest].last_ms)
            oldest = i;
    }
    l->inc[oldest].id = id;
    l->inc[oldest].used = 0;
    l->inc[oldest].last_ms = now;
    return oldest;
}

/* Reserves est tokens, or -EDQUOT with the reason. */
static int budget_reserve(llm *l, const llm_cfg *c, uint64_t incident, int64_t est, char *why, size_t n)
{
    int64_t now = core_now_ms(), minute = now / 60000;
    int rc = 0;
    pthread_mutex_lock(&l->mu);
    int64_t used = hour_used(l, minute);
    if (used + est > c->tokens_per_hour) {
        snprintf(why, n, "over the hourly token budget (%lld used + %lld asked > tokens_per_hour %lld)",
                 (long long)used, (long long)est, (long long)c->tokens_per_hour);
        rc = -EDQUOT;
    } else if (incident) {
        int i = inc_slot(l, incident, now);
        if (l->inc[i].used + est > c->tokens_per_incident) {
            snprintf(why, n,
                     "over incident %llu's token budget (%lld used + %lld asked > tokens_per_incident %lld)",
                     (unsigned long long)incident, (long long)l->inc[i].used, (long long)est,
                     (long long)c->tokens_per_incident);
            rc = -EDQUOT;
        } else {
            l->inc[i].used += est;
            l->inc[i].last_ms = now;
        }
    }
    if (!rc)
        hour_add(l, minute, est);
    else
        l->refused++;
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* Replaces a reservation by what was really spent (0: refund). */
static void budget_settle(llm *l, uint64_t incident, int64_t est, int64_t spent)
{
    int64_t now = core_now_ms();
    pthread_mutex_lock(&l->mu);
    hour_add(l, now / 60000, spent - est);
    if (incident) {
        int i = inc_slot(l, incident, now);
        l->inc[i].used += spent - est;
        if (l->inc[i].used < 0)
            l->inc[i].used = 0;
    }
    pthread_mutex_unlock(&l->mu);
}

/* ---- the record of what was sent ---------------------------------------------- */

static void iso_now(char *buf, size_t n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char b[32];
    strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, n, "%s.%03ldZ", b, ts.tv_nsec / 1000000);
}

static void record_sent(llm *l, const char *provider, const char *purpose, const char *body)
{
    if (l->on_sent)
        l->on_sent(l->ud, provider, body);
    if (!l->state_dir[0])
        return;
    char path[CORE_PATH_MAX + 32], old[CORE_PATH_MAX + 40], ts[40];
    snprintf(path, sizeof path, "%s/llm/sent.jsonl", l->state_dir);
    snprintf(old, sizeof old, "%s.1", path);
    iso_now(ts, sizeof ts);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "ts", ts, "provider", provider, "purpose",
                          purpose ? purpose : "", "body", body);
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!line)
        return;
    pthread_mutex_lock(&l->sent_mu);
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size >= SENT_ROTATE)
        rename(path, old);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) {
        fchmod(fd, 0600);
        size_t len = strlen(line);
        line[len] = '\n'; /* json_dumps' NUL becomes the newline: written by length */
        ssize_t w = write(fd, line, len + 1);
        (void)w;
        close(fd);
    }
    pthread_mutex_unlock(&l->sent_mu);
    free(line);
}

/* ---- one provider --------------------------------------------------------------- */

enum { P_LOCAL, P_CLOUD, P_MESH };
enum { O_OK, O_UNSURE, O_FAILED, O_BUDGET };

typedef struct attempt {
    int outcome;
    char reason[300];
    llm_reply reply;
    double confidence;
    char *content; /* the final text (fence stripped), owned */
    long ms;
    long status;
} attempt;

/* The key of the cloud provider: key_file's first line, else the environment. */
static int cloud_key(const llm_cfg *c, char *key, size_t n, char *why, size_t wn)
{
    key[0] = 0;
    if (c->key_file[0]) {
        FILE *f = fopen(c->key_file, "re");
        if (!f) {
            snprintf(why, wn, "key_file %s: %s", c->key_file, strerror(errno));
            return -ENOENT;
        }
        if (!fgets(key, (int)n, f))
            key[0] = 0;
        fclose(f);
    } else {
        const char *env = getenv(c->cloud == LLM_CLOUD_ANTHROPIC ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY");
        snprintf(key, n, "%s", env ? env : "");
    }
    size_t len = strlen(key);
    while (len && (key[len - 1] == '\n' || key[len - 1] == '\r' || key[len - 1] == ' '))
        key[--len] = 0;
    if (!key[0]) {
        snprintf(why, wn, "no API key (key_file or %s)",
                 c->cloud == LLM_CLOUD_ANTHROPIC ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY");
        return -ENOENT;
    }
    return 0;
}

static void feed_stream(void *ud, const char *buf, size_t n)
{
    llm_reply *r = ud;
    llm_sse_feed(&r->sse, buf, n);
}

/* A reasoning model's leading "<think>...</think>" is not the answer. */
static const char *skip_think(const char *s)
{
    const char *t = s + strspn(s, " \t\r\n");
    const char *end = strncmp(t, "<think>", 7) ? NULL : strstr(t, "</think>");
    return end ? end + 8 : s;
}

/* "```json\n{...}\n```" -> "{...}" (models add fences though asked not to). */
static char *strip_fence(const char *s)
{
    s = skip_think(s);
    while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')
        s++;
    if (strncmp(s, "```", 3))
        return strdup(s);
    const char *nl = strchr(s, '\n');
    if (!nl)
        return strdup(s);
    char *t = strdup(nl + 1);
    if (!t)
        return NULL;
    char *end = strstr(t, "```");
    if (end)
        *end = 0;
    return t;
}

static int64_t min_i64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Sends one request (after a short Retry-After, once more). */
static void transfer(llm *l, const llm_cfg *c, int prov, const char *body, const char *const *hdrs,
                     const llm_request *r, attempt *at, llm_http_res *res)
{
    bool anthropic = prov == P_CLOUD && c->cloud == LLM_CLOUD_ANTHROPIC;
    char url[LLM_URL_MAX + 32];
    snprintf(url, sizeof url, "%s/%s", prov == P_LOCAL ? c->local : c->cloud_url,
             anthropic ? "messages" : "chat/completions");
    for (int tries = 0;; tries++) {
        llm_reply_free(&at->reply);
        llm_reply_init(&at->reply, r->on_delta, r->ud);
        llm_sse_init(&at->reply.sse, anthropic ? llm_anthropic_event : llm_openai_event, &at->reply);
        llm_http_req q = {.url = url, .body = body, .headers = hdrs, .timeout_ms = c->timeout_ms,
                          .connect_timeout_ms = min_i64(c->connect_timeout_ms, c->timeout_ms),
                          .on_data = r->on_delta ? feed_stream : NULL, .ud = &at->reply, .cancel = &l->cancel};
        llm_http_post(&q, res);
        if (tries == 0 && res->status == 429 && res->retry_after_ms >= 0 &&
            res->retry_after_ms <= RETRY_AFTER_MAX_MS) {
            struct timespec ts = {res->retry_after_ms / 1000, (res->retry_after_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            llm_http_res_free(res);
            continue;
        }
        return;
    }
}

static void failed(attempt *at, const char *fmt, const char *arg)
{
    at->outcome = O_FAILED;
    snprintf(at->reason, sizeof at->reason, fmt, arg);
}

/* What the answer is worth: the checks in the order of llm.h. */
static void judge(const llm_cfg *c, const llm_request *r, const json_t *schema, const llm_http_res *res,
                  bool anthropic, attempt *at)
{
    char msg[256];
    if (res->status == 0) {
        at->outcome = O_FAILED;
        snprintf(at->reason, sizeof at->reason, "%s (%s)",
                 res->net == LLM_NET_REFUSED   ? "connection refused"
                 : res->net == LLM_NET_TIMEOUT ? "timeout"
                                               : "no answer",
                 res->err);
        return;
    }
    if (res->status < 200 || res->status >= 300) {
        llm_error_message(res->body, msg, sizeof msg);
        at->outcome = O_FAILED;
        snprintf(at->reason, sizeof at->reason, "HTTP %ld%s%s%s", res->status,
                 res->status == 429 ? " (rate limited)" : "", msg[0] ? ": " : "", msg);
        return;
    }
    if (r->on_delta) {
        llm_sse_finish(&at->reply.sse);
        if (!at->reply.sse.done && !at->reply.len && !at->reply.refusal && res->body && res->body[0] == '{')
            (anthropic ? llm_anthropic_parse : llm_openai_parse)(res->body, res->len, &at->reply); /* not streamed */
    } else if ((anthropic ? llm_anthropic_parse : llm_openai_parse)(res->body, res->len, &at->reply)) {
        failed(at, "invalid answer: %s", at->reply.error);
        return;
    }
    if (at->reply.error[0]) {
        failed(at, "the provider reported: %s", at->reply.error);
        return;
    }
    if (at->reply.refusal) {
        failed(at, "refusal: %.200s", at->reply.refusal);
        return;
    }
    at->content = schema ? strip_fence(at->reply.content ? at->reply.content : "")
                         : strdup(skip_think(at->reply.content ? at->reply.content : ""));
    if (!at->content || !at->content[strspn(at->content, " \t\r\n")]) {
        failed(at, "%s", "refusal: empty content");
        return;
    }
    if (schema) {
        json_error_t je;
        json_t *v = json_loads(at->content, JSON_DECODE_ANY, &je);
        if (!v) {
            failed(at, "invalid JSON: %s", je.text);
            return;
        }
        int rc = llm_schema_check(schema, v, msg, sizeof msg);
        json_decref(v);
        if (rc) {
            failed(at, "schema violation: %s", msg);
            return;
        }
    }
    at->outcome = O_OK;
    if (r->validate) {
        msg[0] = 0;
        int v = r->validate(r->ud, at->content, msg, sizeof msg);
        if (v == LLM_INVALID) {
            failed(at, "rejected: %s", msg[0] ? msg : "the caller's check said no");
            return;
        }
        if (v == LLM_UNSURE) {
            at->outcome = O_UNSURE;
            snprintf(at->reason, sizeof at->reason, "unsure: %s", msg[0] ? msg : "the caller's check");
        }
    }
    at->confidence = llm_reply_confidence(&at->reply);
    if (at->outcome == O_OK && !isnan(at->confidence) && at->confidence < c->unsure_below) {
        at->outcome = O_UNSURE;
        snprintf(at->reason, sizeof at->reason, "unsure: mean token probability %.3f < unsure_below %.3f",
                 at->confidence, c->unsure_below);
    }
}

static int64_t estimate(const char *s)
{
    return s ? (int64_t)(strlen(s) / 4) : 0;
}

static const char *prov_name(const llm_cfg *c, int prov)
{
    return prov == P_LOCAL ? "local" : prov == P_MESH ? "mesh" : llm_cloud_name(c->cloud);
}

/* The mesh provider: the hook in place of HTTP, its answer as if it were one. */
static void ask_remote(llm *l, const llm_cfg *c, const char *body, llm_http_res *res)
{
    memset(res, 0, sizeof *res);
    res->retry_after_ms = -1;
    pthread_mutex_lock(&l->mu);
    llm_remote_fn fn = l->remote;
    void *ud = l->remote_ud;
    if (fn)
        l->remote_busy++;
    pthread_mutex_unlock(&l->mu);
    char *answer = NULL;
    int rc = fn ? fn(ud, body, (int)c->timeout_ms, &answer, res->err, sizeof res->err) : -ENOENT;
    if (fn) {
        pthread_mutex_lock(&l->mu);
        if (--l->remote_busy == 0)
            pthread_cond_broadcast(&l->remote_cv);
        pthread_mutex_unlock(&l->mu);
    }
    if (!fn)
        snprintf(res->err, sizeof res->err, "no reasoning peer hook");
    if (rc || !answer) {
        free(answer);
        res->net = rc == -ETIMEDOUT ? LLM_NET_TIMEOUT : rc == -ECONNREFUSED ? LLM_NET_REFUSED : LLM_NET_ERROR;
        if (!res->err[0])
            snprintf(res->err, sizeof res->err, "%s", strerror(rc ? -rc : EIO));
        return;
    }
    res->status = 200;
    res->body = answer;
    res->len = strlen(answer);
}

static void ask(llm *l, const llm_cfg *c, int prov, const llm_request *r, const json_t *schema, attempt *at)
{
    memset(at, 0, sizeof *at);
    at->confidence = NAN;
    llm_reply_init(&at->reply, NULL, NULL);
    bool leaves = prov != P_LOCAL || c->local_remote;
    bool anthropic = prov == P_CLOUD && c->cloud == LLM_CLOUD_ANTHROPIC;
    const char *pname = prov_name(c, prov);
    char *sys = leaves ? llm_redact_with(c->redactor, r->system, NULL) : NULL;
    char *user = leaves ? llm_redact_with(c->redactor, r->user, NULL) : NULL;
    int max_tokens = r->max_tokens > 0 ? r->max_tokens : 1024;
    llm_prompt p = {.model = prov == P_CLOUD ? c->cloud_model : c->local_model, /* the peer sets its own */
                    .system = leaves ? sys : r->system, .user = leaves ? user : r->user,
                    .schema_name = r->schema_name, .schema = r->schema, .max_tokens = max_tokens,
                    .stream = r->on_delta != NULL && prov != P_MESH};
    char key[512], auth[600] = "", ver[] = "anthropic-version: 2023-06-01";
    const char *hdrs[3] = {NULL, NULL, NULL};
    int64_t est = estimate(p.system) + estimate(p.user) + max_tokens;
    char *body = NULL;
    if (leaves && (!sys || !user)) {
        failed(at, "%s", "out of memory while redacting");
        goto out;
    }
    if (prov == P_CLOUD) {
        if (cloud_key(c, key, sizeof key, at->reason, sizeof at->reason)) {
            at->outcome = O_FAILED;
            goto out;
        }
        snprintf(auth, sizeof auth, anthropic ? "x-api-key: %s" : "Authorization: Bearer %s", key);
        hdrs[0] = auth;
        hdrs[1] = anthropic ? ver : NULL;
        memset(key, 0, sizeof key);
    }
    body = anthropic ? llm_anthropic_body(&p) : llm_openai_body(&p);
    if (!body) {
        failed(at, "%s", "cannot build the request body");
        goto out;
    }
    if (budget_reserve(l, c, r->incident, est, at->reason, sizeof at->reason)) {
        at->outcome = O_BUDGET;
        goto out;
    }
    if (leaves)
        record_sent(l, pname, r->purpose, body);
    int64_t t0 = core_mono_ms();
    llm_http_res res;
    if (prov == P_MESH) {
        ask_remote(l, c, body, &res);
        llm_request whole = *r; /* the peer's answer comes whole: passed on as one piece */
        whole.on_delta = NULL;
        judge(c, &whole, schema, &res, false, at);
        if (r->on_delta && at->content && (at->outcome == O_OK || at->outcome == O_UNSURE))
            r->on_delta(r->ud, at->content, strlen(at->content));
    } else {
        transfer(l, c, prov, body, hdrs, r, at, &res);
        judge(c, r, schema, &res, anthropic, at);
    }
    at->ms = (long)(core_mono_ms() - t0);
    at->status = res.status;
    int64_t spent = 0;
    if (res.status >= 200 && res.status < 300) {
        if (at->reply.prompt_tokens < 0)
            at->reply.prompt_tokens = (int)(estimate(p.system) + estimate(p.user));
        if (at->reply.completion_tokens < 0)
            at->reply.completion_tokens = (int)(at->reply.len / 4);
        spent = at->reply.prompt_tokens + at->reply.completion_tokens;
    }
    budget_settle(l, r->incident, est, spent);
    llm_http_res_free(&res);
out:
    memset(auth, 0, sizeof auth);
    free(body);
    free(sys);
    free(user);
}

/* ---- routing ----------------------------------------------------------------------- */

static const char *outcome_name(int o)
{
    return o == O_OK ? "ok" : o == O_UNSURE ? "unsure" : o == O_BUDGET ? "over_budget" : "failed";
}

static void note(json_t *attempts, const char *pname, const char *model, const attempt *at)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I}", "provider", pname, "model", model, "outcome",
                          outcome_name(at->outcome), "reason", at->reason, "ms", (json_int_t)at->ms);
    if (o && at->status)
        json_object_set_new(o, "status", json_integer(at->status));
    if (o && !isnan(at->confidence))
        json_object_set_new(o, "confidence", json_real(at->confidence));
    json_array_append_new(attempts, o);
}

/* fell_back: the reason the previous provider's answer was not enough, or NULL. */
static void count(llm *l, int prov, const attempt *at, const char *purpose, const char *fell_back)
{
    pthread_mutex_lock(&l->mu);
    prov_stats *s = prov == P_LOCAL ? &l->local : prov == P_MESH ? &l->mesh : &l->cloud;
    s->requests++;
    if (at->outcome == O_FAILED) {
        s->failures++;
        snprintf(s->last_error, sizeof s->last_error, "%s", at->reason);
    }
    if (fell_back) {
        l->fallbacks++;
        fallback_rec *f = &l->recent[l->recent_next];
        f->ts_ms = core_now_ms();
        snprintf(f->purpose, sizeof f->purpose, "%s", purpose ? purpose : "");
        snprintf(f->reason, sizeof f->reason, "%s", fell_back);
        l->recent_next = (l->recent_next + 1) % RECENT;
        if (l->nrecent < RECENT)
            l->nrecent++;
    }
    pthread_mutex_unlock(&l->mu);
}

static void attempt_free(attempt *at)
{
    llm_reply_free(&at->reply);
    free(at->content);
    at->content = NULL;
}

static void fill(llm_answer *a, attempt *at, const char *pname, const char *model, bool unsure)
{
    a->content = at->content;
    at->content = NULL;
    a->provider = strdup(pname);
    a->model = strdup(at->reply.model[0] ? at->reply.model : model);
    a->confidence = at->confidence;
    a->unsure = unsure;
    a->prompt_tokens = at->reply.prompt_tokens;
    a->completion_tokens = at->reply.completion_tokens;
}

/* The later unsure answer replaces the kept one when it is surer (or the kept one has no number). */
static bool better_unsure(const attempt *kept, const attempt *next)
{
    return isnan(kept->confidence) || (!isnan(next->confidence) && next->confidence > kept->confidence);
}

int llm_complete(llm *l, const llm_request *r, llm_answer *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    a->confidence = NAN;
    if (!l || !r) {
        snprintf(err, errlen, "no language model is configured");
        return -ENOENT;
    }
    cfg_ref *ref = cfg_get(l);
    const llm_cfg *c = &ref->c;
    int provs[3], np = 0;
    if (c->local[0])
        provs[np++] = P_LOCAL;
    if (remote_ready(l, c))
        provs[np++] = P_MESH;
    if (c->cloud != LLM_CLOUD_NONE)
        provs[np++] = P_CLOUD;
    if (!np) {
        cfg_put(l, ref);
        snprintf(err, errlen, "no language model is configured ([llm] local or cloud) and no reasoning peer of "
                              "the mesh is reachable");
        return -ENOENT;
    }
    json_t *schema = NULL;
    if (r->schema && !(schema = json_loads(r->schema, 0, NULL))) {
        cfg_put(l, ref);
        snprintf(err, errlen, "the request's schema (%s) is not JSON", r->schema_name ? r->schema_name : "?");
        return -EINVAL;
    }
    pthread_mutex_lock(&l->mu);
    l->requests++;
    pthread_mutex_unlock(&l->mu);
    json_t *attempts = json_array();
    attempt best = {.outcome = O_FAILED, .confidence = NAN}, at;
    const char *best_name = NULL, *best_model = NULL;
    bool have = false, budget = false;
    char last[300] = "";
    for (int i = 0; i < np && !(have && best.outcome == O_OK); i++) {
        int prov = provs[i];
        const char *pname = prov_name(c, prov);
        const char *model = prov == P_LOCAL ? c->local_model : prov == P_MESH ? "mesh" : c->cloud_model;
        ask(l, c, prov, r, schema, &at);
        note(attempts, pname, at.reply.model[0] ? at.reply.model : model, &at);
        if (at.outcome == O_BUDGET) {
            budget = true;
            snprintf(last, sizeof last, "%s", at.reason);
            attempt_free(&at);
            break; /* a later provider would cost as much */
        }
        count(l, prov, &at, r->purpose, i > 0 ? last : NULL);
        snprintf(last, sizeof last, "%s: %s", pname, at.reason);
        bool take = at.outcome == O_OK || (at.outcome == O_UNSURE && (!have || better_unsure(&best, &at)));
        if (take) {
            if (have)
                attempt_free(&best);
            best = at;
            best_name = pname;
            best_model = model;
            have = true;
        } else
            attempt_free(&at);
    }
    int rc = 0;
    if (have)
        fill(a, &best, best_name, best_model, best.outcome == O_UNSURE);
    else {
        rc = budget ? -EDQUOT : -EIO;
        snprintf(err, errlen, "%s%s", rc == -EIO ? "every provider failed; last: " : "", last);
        pthread_mutex_lock(&l->mu);
        l->failures++;
        pthread_mutex_unlock(&l->mu);
    }
    if (have)
        attempt_free(&best);
    a->attempts = json_dumps(attempts, JSON_COMPACT);
    json_decref(attempts);
    json_decref(schema);
    cfg_put(l, ref);
    return rc;
}

/* ---- serving a peer of the fleet: its request to the local model only ---------------------- */

#define PEER_MAX_TOKENS 4096

/* The peer's body made ours: our model, not streamed, bounded; NULL with why. */
static char *peer_body(const llm_cfg *c, const char *body_json, int64_t *max_tokens, char *err, size_t errlen)
{
    json_error_t je;
    json_t *o = json_loads(body_json ? body_json : "", 0, &je);
    const json_t *msgs = json_object_get(o, "messages");
    if (!json_is_object(o) || !json_is_array(msgs) || !json_array_size(msgs)) {
        snprintf(err, errlen, "the request is not an OpenAI chat-completions body (an object with messages)%s%s",
                 o ? "" : ": ", o ? "" : je.text);
        json_decref(o);
        return NULL;
    }
    json_int_t mt = json_integer_value(json_object_get(o, "max_tokens"));
    mt = mt <= 0 ? 1024 : mt > PEER_MAX_TOKENS ? PEER_MAX_TOKENS : mt;
    *max_tokens = mt;
    json_object_set_new(o, "model", json_string(c->local_model));
    json_object_set_new(o, "stream", json_false());
    json_object_set_new(o, "max_tokens", json_integer(mt));
    json_object_del(o, "stream_options");
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        snprintf(err, errlen, "out of memory");
    return s;
}

/* The tokens an answer reports (est when it says nothing). */
static int64_t reported_tokens(const llm_http_res *res, int64_t est)
{
    json_t *o = json_loadb(res->body ? res->body : "", res->len, 0, NULL);
    const json_t *u = json_object_get(o, "usage");
    int64_t n = json_is_object(u) ? json_integer_value(json_object_get(u, "prompt_tokens")) +
                                        json_integer_value(json_object_get(u, "completion_tokens"))
                                  : est;
    json_decref(o);
    return n > 0 ? n : est;
}

int llm_complete_local_body(llm *l, const char *body_json, int timeout_ms, char **answer_json, char *err,
                            size_t errlen)
{
    *answer_json = NULL;
    if (!l) {
        snprintf(err, errlen, "this cell has no language model");
        return -ENOENT;
    }
    cfg_ref *ref = cfg_get(l);
    const llm_cfg *c = &ref->c;
    int64_t max_tokens = 0;
    llm_http_res res = {0};
    char *body = NULL;
    int rc = -EIO;
    if (!c->local[0]) {
        snprintf(err, errlen, "this cell has no local model ([llm] local)");
        rc = -ENOENT;
        goto out;
    }
    if (!(body = peer_body(c, body_json, &max_tokens, err, errlen))) {
        rc = -EINVAL;
        goto out;
    }
    int64_t est = (int64_t)strlen(body) / 4 + max_tokens;
    if (budget_reserve(l, c, 0, est, err, errlen)) {
        rc = -EDQUOT;
        goto out;
    }
    if (c->local_remote)
        record_sent(l, "local", "mesh", body);
    char url[LLM_URL_MAX + 32];
    snprintf(url, sizeof url, "%s/chat/completions", c->local);
    int64_t to = timeout_ms > 0 ? min_i64(timeout_ms, c->timeout_ms) : c->timeout_ms;
    llm_http_req q = {.url = url, .body = body, .timeout_ms = to,
                      .connect_timeout_ms = min_i64(c->connect_timeout_ms, to), .cancel = &l->cancel};
    llm_http_post(&q, &res);
    bool ok = res.status >= 200 && res.status < 300 && res.body;
    budget_settle(l, 0, est, ok ? reported_tokens(&res, est) : 0);
    if (ok) {
        *answer_json = res.body;
        res.body = NULL;
        rc = 0;
    } else if (res.status) {
        char msg[200];
        llm_error_message(res.body, msg, sizeof msg);
        snprintf(err, errlen, "the local model answered HTTP %ld%s%s", res.status, msg[0] ? ": " : "", msg);
    } else
        snprintf(err, errlen, "the local model: %s", res.err[0] ? res.err : "no answer");
    pthread_mutex_lock(&l->mu);
    l->local.requests++;
    if (rc) {
        l->local.failures++;
        snprintf(l->local.last_error, sizeof l->local.last_error, "%s", err);
    }
    pthread_mutex_unlock(&l->mu);
out:
    llm_http_res_free(&res);
    free(body);
    cfg_put(l, ref);
    return rc;
}

void llm_answer_free(llm_answer *a)
{
    if (!a)
        return;
    free(a->content);
    free(a->provider);
    free(a->model);
    free(a->attempts);
    memset(a, 0, sizeof *a);
    a->confidence = NAN;
}

/* ---- embeddings ----------------------------------------------------------------------- */

static int embed_parse(const llm_http_res *res, size_t n, float *out, int dims, int *got, char *err,
                       size_t errlen)
{
    json_t *o = json_loadb(res->body ? res->body : "", res->len, 0, NULL);
    const json_t *data = json_object_get(o, "data");
    if (!json_is_array(data) || json_array_size(data) != n) {
        snprintf(err, errlen, "the embeddings answer has %zu vectors for %zu texts",
                 json_is_array(data) ? json_array_size(data) : 0, n);
        json_decref(o);
        return -EIO;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *d = json_array_get(data, i), *ix = json_object_get(d, "index");
        size_t k = json_is_integer(ix) ? (size_t)json_integer_value(ix) : i;
        const json_t *v = json_object_get(d, "embedding");
        *got = (int)json_array_size(v);
        if (k >= n || !json_is_array(v) || (int)json_array_size(v) != dims) {
            snprintf(err, errlen, "vector %zu has %zu dimensions, %d expected", i, json_array_size(v), dims);
            json_decref(o);
            return -EIO;
        }
        double norm = 0;
        for (int j = 0; j < dims; j++) {
            double x = json_number_value(json_array_get(v, (size_t)j));
            out[k * (size_t)dims + (size_t)j] = (float)x;
            norm += x * x;
        }
        norm = sqrt(norm);
        for (int j = 0; norm > 0 && j < dims; j++)
            out[k * (size_t)dims + (size_t)j] = (float)(out[k * (size_t)dims + (size_t)j] / norm);
    }
    json_decref(o);
    return 0;
}

/* The number of dimensions of a first answer, before checking it. */
static int first_dims(const llm_http_res *res)
{
    json_t *o = json_loadb(res->body ? res->body : "", res->len, 0, NULL);
    int d = (int)json_array_size(json_object_get(json_array_get(json_object_get(o, "data"), 0), "embedding"));
    json_decref(o);
    return d;
}

int llm_embed(llm *l, const char *const *texts, size_t n, float *out, int dims, char *err, size_t errlen)
{
    if (!l) {
        snprintf(err, errlen, "no embeddings endpoint is configured");
        return -ENOENT;
    }
    cfg_ref *ref = cfg_get(l);
    const llm_cfg *c = &ref->c;
    int rc = -EIO;
    json_t *in = json_array();
    char *body = NULL, auth[600] = "", key[512];
    const char *hdrs[2] = {NULL, NULL};
    llm_http_res res = {0};
    if (!c->embeddings[0]) {
        snprintf(err, errlen, "no embeddings endpoint is configured ([llm] embeddings)");
        rc = -ENOENT;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char *t = c->embeddings_remote ? llm_redact_with(c->redactor, texts[i], NULL) : strdup(texts[i]);
        json_array_append_new(in, json_string(t ? t : ""));
        free(t);
    }
    json_t *o = json_pack("{s:s, s:o}", "model", c->embeddings_model, "input", in);
    in = NULL;
    body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!body) {
        snprintf(err, errlen, "cannot build the embeddings request");
        goto out;
    }
    if (c->embeddings_remote) {
        const char *env = getenv("OPENAI_API_KEY");
        char why[64];
        llm_cfg kc = *c;
        kc.cloud = LLM_CLOUD_OPENAI;
        if (c->cloud == LLM_CLOUD_OPENAI && !cloud_key(&kc, key, sizeof key, why, sizeof why))
            snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        else if (env && *env)
            snprintf(auth, sizeof auth, "Authorization: Bearer %s", env);
        memset(key, 0, sizeof key);
        hdrs[0] = auth[0] ? auth : NULL;
        record_sent(l, "embeddings", "embed", body);
    }
    char url[LLM_URL_MAX + 16];
    snprintf(url, sizeof url, "%s/embeddings", c->embeddings);
    llm_http_req q = {.url = url, .body = body, .headers = hdrs, .timeout_ms = c->timeout_ms,
                      .connect_timeout_ms = c->connect_timeout_ms, .cancel = &l->cancel};
    if (llm_http_post(&q, &res) || res.status != 200) {
        char msg[200] = "";
        llm_error_message(res.body, msg, sizeof msg);
        if (res.status)
            snprintf(err, errlen, "embeddings: HTTP %ld%s%s", res.status, msg[0] ? ": " : "", msg);
        else
            snprintf(err, errlen, "embeddings: %s", res.err);
        goto out;
    }
    int want = dims > 0 ? dims : c->embeddings_dims ? c->embeddings_dims : first_dims(&res);
    int got = 0;
    rc = embed_parse(&res, n, out, want, &got, err, errlen);
    if (!rc && !c->embeddings_dims) {
        pthread_mutex_lock(&l->mu);
        l->embed_dims = got;
        pthread_mutex_unlock(&l->mu);
    }
out:
    memset(auth, 0, sizeof auth);
    json_decref(in);
    free(body);
    llm_http_res_free(&res);
    cfg_put(l, ref);
    return rc;
}

int llm_embed_dims(const llm *l)
{
    if (!l)
        return 0;
    llm *m = (llm *)l;
    pthread_mutex_lock(&m->mu);
    int d = m->cfg->c.embeddings[0] ? (m->cfg->c.embeddings_dims ? m->cfg->c.embeddings_dims : m->embed_dims) : 0;
    pthread_mutex_unlock(&m->mu);
    return d;
}

/* ---- status ------------------------------------------------------------------------- */

static json_t *prov_json(const prov_stats *s, bool configured, const char *url, const char *model)
{
    json_t *o = json_pack("{s:b, s:s, s:s, s:I, s:I}", "configured", configured, "url", url, "model", model,
                          "requests", (json_int_t)s->requests, "failures", (json_int_t)s->failures);
    if (o && s->last_error[0])
        json_object_set_new(o, "last_error", json_string(s->last_error));
    return o;
}

char *llm_status_json(const llm *l)
{
    if (!l)
        return strdup("{\"available\":false}");
    llm *m = (llm *)l;
    cfg_ref *ref = cfg_get(m);
    bool remote = remote_ready(m, &ref->c); /* before mu: the hook takes the cell's lock */
    cfg_put(m, ref);
    pthread_mutex_lock(&m->mu);
    const llm_cfg *c = &m->cfg->c;
    int64_t minute = core_now_ms() / 60000;
    json_t *o = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "available",
                          c->local[0] || c->cloud != LLM_CLOUD_NONE || remote, "tokens_hour",
                          (json_int_t)hour_used(m, minute), "budget_hour", (json_int_t)c->tokens_per_hour,
                          "budget_incident", (json_int_t)c->tokens_per_incident, "requests",
                          (json_int_t)m->requests, "failures", (json_int_t)m->failures, "fallbacks",
                          (json_int_t)m->fallbacks, "refused", (json_int_t)m->refused);
    if (o) {
        json_t *loc = prov_json(&m->local, c->local[0] != 0, c->local, c->local_model);
        json_object_set_new(loc, "redacted", json_boolean(c->local_remote));
        json_object_set_new(o, "local", loc);
        json_t *cl = prov_json(&m->cloud, c->cloud != LLM_CLOUD_NONE, c->cloud_url, c->cloud_model);
        json_object_set_new(cl, "provider", json_string(llm_cloud_name(c->cloud)));
        json_object_set_new(o, "cloud", cl);
        json_t *me = prov_json(&m->mesh, m->remote != NULL, "", "");
        json_object_set_new(me, "allowed", json_boolean(c->mesh));
        json_object_set_new(me, "available", json_boolean(remote));
        json_object_set_new(o, "mesh", me);
        json_object_set_new(o, "unsure_below", json_real(c->unsure_below));
        json_object_set_new(o, "embeddings",
                            json_pack("{s:s, s:s, s:i}", "url", c->embeddings, "model", c->embeddings_model,
                                      "dims", c->embeddings_dims ? c->embeddings_dims : m->embed_dims));
        json_t *rec = json_array();
        for (int i = 0; i < m->nrecent; i++) {
            const fallback_rec *f = &m->recent[(m->recent_next - 1 - i + RECENT) % RECENT];
            json_array_append_new(rec, json_pack("{s:I, s:s, s:s}", "ts", (json_int_t)f->ts_ms, "purpose",
                                                 f->purpose, "reason", f->reason));
        }
        json_object_set_new(o, "recent_fallbacks", rec);
        char path[CORE_PATH_MAX + 32] = "";
        if (m->state_dir[0])
            snprintf(path, sizeof path, "%s/llm/sent.jsonl", m->state_dir);
        json_object_set_new(o, "sent_log", json_string(path));
    }
    pthread_mutex_unlock(&m->mu);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}
