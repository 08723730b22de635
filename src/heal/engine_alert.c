/* engine_alert.c: the alert action's webhooks: one JSON POST to each
 * [alert.NAME] url (or the one the action names), with libcurl's easy
 * interface on the libuv thread pool so the loop never waits on the
 * network. The event stream gets its `alert` event from engine_act.c. */
#include "heal/engine_int.h"

#include "core/curl_dl.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct post {
    char url[HEAL_ARG_MAX];
    char name[HEAL_NAME_MAX];
    int64_t timeout_ms;
    long status;
    char err[CURL_ERROR_SIZE];
} post;

typedef struct alert_job {
    uv_work_t w;
    heal_engine *e;
    char *body;
    post *posts;
    int n;
    void (*done)(void *ud, int rc, const char *msg);
    void *ud;
} alert_job;

static size_t discard(char *p, size_t sz, size_t n, void *ud)
{
    (void)p, (void)ud;
    return sz * n;
}

static void post_one(post *p, const char *body)
{
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(p->err, sizeof p->err, "curl_easy_init failed");
        return;
    }
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, p->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, p->err);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "ippocd/" IPPOC_VERSION);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &p->status);
    else if (!p->err[0])
        snprintf(p->err, sizeof p->err, "%s", curl_easy_strerror(rc));
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

static void alert_work(uv_work_t *w)
{
    alert_job *j = w->data;
    for (int i = 0; i < j->n; i++)
        post_one(&j->posts[i], j->body);
}

static void alert_after(uv_work_t *w, int status)
{
    alert_job *j = w->data;
    char msg[512] = "";
    size_t used = 0;
    int rc = status ? -ECANCELED : 0;
    for (int i = 0; i < j->n && used < sizeof msg; i++) {
        post *p = &j->posts[i];
        bool ok = p->status >= 200 && p->status < 300;
        if (!ok)
            rc = -EIO;
        int k = ok ? snprintf(msg + used, sizeof msg - used, "%s%s: HTTP %ld", used ? "; " : "", p->name, p->status)
                   : snprintf(msg + used, sizeof msg - used, "%s%s: %s", used ? "; " : "", p->name,
                              p->err[0] ? p->err : "bad HTTP status");
        used += k > 0 ? (size_t)k : 0;
    }
    if (!j->n)
        snprintf(msg, sizeof msg, "no webhook configured: recorded as an event only");
    j->done(j->ud, rc, msg);
    free(j->body);
    free(j->posts);
    free(j);
}

void eng_alert_send(heal_engine *e, const heal_action *a, json_t *body, void (*done)(void *ud, int rc, const char *msg),
                    void *ud)
{
    char why[256];
    if (e->cfg.nalerts && heal_curl_ready(why, sizeof why)) {
        json_decref(body);
        done(ud, -EIO, why);
        return;
    }
    alert_job *j = calloc(1, sizeof *j);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (j)
        j->posts = calloc((size_t)e->cfg.nalerts + 1, sizeof *j->posts);
    if (!j || !text || !j->posts) {
        if (j)
            free(j->posts);
        free(j);
        free(text);
        done(ud, -ENOMEM, "out of memory");
        return;
    }
    j->e = e;
    j->body = text;
    j->done = done;
    j->ud = ud;
    for (int i = 0; i < e->cfg.nalerts; i++) {
        const eng_alert_cfg *c = &e->cfg.alerts[i];
        if (a->target[0] && strcmp(a->target, c->name))
            continue;
        post *p = &j->posts[j->n++];
        snprintf(p->url, sizeof p->url, "%s", c->url);
        snprintf(p->name, sizeof p->name, "%s", c->name);
        p->timeout_ms = c->timeout_ms;
    }
    j->w.data = j;
    if (uv_queue_work(e->loop, &j->w, alert_work, alert_after))
        alert_after(&j->w, -1);
}
