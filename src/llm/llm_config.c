/* llm_config.c: the [llm] section: defaults, parsing and the checks that name
 * FILE:LINE (see llm.h for the keys; embeddings_dims = N is the one key
 * added here: the size of the embeddings endpoint's vectors). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "llm/llm_int.h"

const char *llm_cloud_name(int cloud)
{
    return cloud == LLM_CLOUD_OPENAI ? "openai" : cloud == LLM_CLOUD_ANTHROPIC ? "anthropic" : "none";
}

static void defaults(llm_cfg *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->local_model, sizeof c->local_model, "phi-4-mini-reasoning");
    c->timeout_ms = 60000;
    c->tokens_per_hour = 200000;
    c->tokens_per_incident = 20000;
    c->unsure_below = 0.5;
    c->redact_emails = c->redact_ips = true;
    c->mesh = true;
}

/* The host of "scheme://[user@]host[:port]/..." into host. */
static void url_host(const char *url, char *host, size_t n)
{
    host[0] = 0;
    const char *s = strstr(url, "://");
    s = s ? s + 3 : url;
    const char *at = strpbrk(s, "@/");
    if (at && *at == '@')
        s = at + 1;
    size_t len;
    if (*s == '[') {
        const char *e = strchr(s, ']');
        if (!e)
            return;
        s++;
        len = (size_t)(e - s);
    } else
        len = strcspn(s, ":/?#");
    if (len >= n)
        len = n - 1;
    memcpy(host, s, len);
    host[len] = 0;
}

bool llm_url_is_loopback(const char *url)
{
    char host[256];
    url_host(url, host, sizeof host);
    return host[0] && (core_host_is_loopback(host) || !strcasecmp(host, "localhost"));
}

static int set_url(const core_kv *kv, char *dst, size_t n, char *err, size_t errlen)
{
    const char *v = kv->value;
    if (!*v) {
        dst[0] = 0;
        return 0;
    }
    if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8))
        return core_kv_error(err, errlen, kv, "[llm] %s: '%s' is not an http:// or https:// URL", kv->key, v);
    char host[256];
    url_host(v, host, sizeof host);
    if (!host[0])
        return core_kv_error(err, errlen, kv, "[llm] %s: '%s' has no host", kv->key, v);
    if (strlen(v) >= n)
        return core_kv_error(err, errlen, kv, "[llm] %s: URL too long (at most %zu bytes)", kv->key, n - 1);
    snprintf(dst, n, "%s", v);
    size_t len = strlen(dst);
    while (len && dst[len - 1] == '/')
        dst[--len] = 0;
    return 0;
}

static int set_name(const core_kv *kv, char *dst, size_t n, char *err, size_t errlen)
{
    if (strlen(kv->value) >= n)
        return core_kv_error(err, errlen, kv, "[llm] %s: too long (at most %zu bytes)", kv->key, n - 1);
    snprintf(dst, n, "%s", kv->value);
    return 0;
}

static int set_count(const core_kv *kv, int64_t lo, int64_t hi, int64_t *out, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    long long v = strtoll(kv->value, &end, 10);
    if (errno || end == kv->value || *end || v < lo || v > hi)
        return core_kv_error(err, errlen, kv, "[llm] %s: '%s' is not a whole number from %lld to %lld", kv->key,
                             kv->value, (long long)lo, (long long)hi);
    *out = v;
    return 0;
}

static int set_bool(const core_kv *kv, bool *out, char *err, size_t errlen)
{
    if (core_parse_bool(kv->value, out))
        return core_kv_error(err, errlen, kv, "[llm] %s: '%s' is not yes or no", kv->key, kv->value);
    return 0;
}

static int one_key(llm_cfg *c, const core_kv *kv, char *err, size_t errlen)
{
    const char *k = kv->key, *v = kv->value;
    int64_t n;
    if (!strcmp(k, "local"))
        return set_url(kv, c->local, sizeof c->local, err, errlen);
    if (!strcmp(k, "local_model"))
        return set_name(kv, c->local_model, sizeof c->local_model, err, errlen);
    if (!strcmp(k, "cloud")) {
        if (!strcmp(v, "none") || !*v)
            c->cloud = LLM_CLOUD_NONE;
        else if (!strcmp(v, "openai"))
            c->cloud = LLM_CLOUD_OPENAI;
        else if (!strcmp(v, "anthropic"))
            c->cloud = LLM_CLOUD_ANTHROPIC;
        else
            return core_kv_error(err, errlen, kv, "[llm] cloud: '%s' is not none, openai or anthropic", v);
        return 0;
    }
    if (!strcmp(k, "cloud_url"))
        return set_url(kv, c->cloud_url, sizeof c->cloud_url, err, errlen);
    if (!strcmp(k, "cloud_model"))
        return set_name(kv, c->cloud_model, sizeof c->cloud_model, err, errlen);
    if (!strcmp(k, "key_file"))
        return set_name(kv, c->key_file, sizeof c->key_file, err, errlen);
    if (!strcmp(k, "timeout")) {
        int64_t ms;
        if (core_parse_duration(v, &ms) || ms < 100 || ms > 3600000)
            return core_kv_error(err, errlen, kv, "[llm] timeout: '%s' is not a duration from 100ms to 1h", v);
        c->timeout_ms = ms;
        return 0;
    }
    if (!strcmp(k, "tokens_per_hour"))
        return set_count(kv, 1, 1000000000, &c->tokens_per_hour, err, errlen);
    if (!strcmp(k, "tokens_per_incident"))
        return set_count(kv, 1, 1000000000, &c->tokens_per_incident, err, errlen);
    if (!strcmp(k, "unsure_below")) {
        char *end;
        double x = strtod(v, &end);
        if (end == v || *end || !(x >= 0 && x <= 1))
            return core_kv_error(err, errlen, kv, "[llm] unsure_below: '%s' is not a number from 0 to 1", v);
        c->unsure_below = x;
        return 0;
    }
    if (!strcmp(k, "redact_hosts")) {
        free(c->redact_hosts);
        c->redact_hosts = strdup(v);
        return c->redact_hosts ? 0 : -ENOMEM;
    }
    if (!strcmp(k, "redact_emails"))
        return set_bool(kv, &c->redact_emails, err, errlen);
    if (!strcmp(k, "redact_ips"))
        return set_bool(kv, &c->redact_ips, err, errlen);
    if (!strcmp(k, "mesh")) /* a reasoning peer of the fleet (llm_set_remote) */
        return set_bool(kv, &c->mesh, err, errlen);
    if (!strcmp(k, "embeddings"))
        return set_url(kv, c->embeddings, sizeof c->embeddings, err, errlen);
    if (!strcmp(k, "embeddings_model"))
        return set_name(kv, c->embeddings_model, sizeof c->embeddings_model, err, errlen);
    if (!strcmp(k, "embeddings_dims")) {
        int rc = set_count(kv, 1, 65536, &n, err, errlen);
        c->embeddings_dims = (int)n;
        return rc;
    }
    return core_kv_error(err, errlen, kv,
                         "[llm] unknown key '%s' (local, local_model, cloud, cloud_url, cloud_model, key_file, "
                         "timeout, tokens_per_hour, tokens_per_incident, unsure_below, redact_hosts, "
                         "redact_emails, redact_ips, mesh, embeddings, embeddings_model, embeddings_dims)",
                         k);
}

int llm_cfg_parse(const core_config *cfg, llm_cfg *out, char *err, size_t errlen)
{
    defaults(out);
    const core_kv *cloud_kv = NULL;
    for (int i = 0; i < cfg->nraw; i++) {
        const core_kv *kv = &cfg->raw[i];
        if (strcmp(kv->section, "llm"))
            continue;
        int rc = one_key(out, kv, err, errlen);
        if (rc) {
            llm_cfg_clear(out);
            return rc;
        }
        if (!strcmp(kv->key, "cloud"))
            cloud_kv = kv;
    }
    if (out->cloud == LLM_CLOUD_OPENAI && !out->cloud_url[0])
        snprintf(out->cloud_url, sizeof out->cloud_url, "https://api.openai.com/v1");
    if (out->cloud == LLM_CLOUD_ANTHROPIC && !out->cloud_url[0])
        snprintf(out->cloud_url, sizeof out->cloud_url, "https://api.anthropic.com/v1");
    if (out->cloud == LLM_CLOUD_OPENAI && !out->cloud_model[0])
        snprintf(out->cloud_model, sizeof out->cloud_model, "gpt-4o-mini");
    if (out->cloud == LLM_CLOUD_ANTHROPIC && !out->cloud_model[0])
        snprintf(out->cloud_model, sizeof out->cloud_model, "claude-3-5-haiku-latest");
    (void)cloud_kv;
    if (!out->embeddings_model[0])
        snprintf(out->embeddings_model, sizeof out->embeddings_model, "text-embedding-3-small");
    out->local_remote = out->local[0] && !llm_url_is_loopback(out->local);
    out->embeddings_remote = out->embeddings[0] && !llm_url_is_loopback(out->embeddings);
    out->connect_timeout_ms = out->timeout_ms < 5000 ? out->timeout_ms : 5000;
    int rc = llm_redactor_new(out->redact_hosts, out->redact_emails, out->redact_ips, &out->redactor, err, errlen);
    if (rc) {
        llm_cfg_clear(out);
        return rc;
    }
    return 0;
}

void llm_cfg_clear(llm_cfg *c)
{
    free(c->redact_hosts);
    c->redact_hosts = NULL;
    llm_redactor_free(c->redactor);
    c->redactor = NULL;
}
