/* llm.c: the language-model client's configuration and routing (a first
 * stand-in: no provider is ever available; see llm.h). */
#include "llm/llm.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct llm {
    int unused;
};

int llm_config_check(const core_config *cfg, char *err, size_t errlen)
{
    (void)cfg, (void)err, (void)errlen;
    return 0;
}

int llm_new(const core_config *cfg, const char *state_dir,
            void (*on_sent)(void *ud, const char *provider, const char *body), void *ud, llm **out, char *err,
            size_t errlen)
{
    (void)cfg, (void)state_dir, (void)on_sent, (void)ud, (void)err, (void)errlen;
    *out = calloc(1, sizeof **out);
    return *out ? 0 : -ENOMEM;
}

int llm_reconfigure(llm *l, const core_config *cfg, char *err, size_t errlen)
{
    (void)l, (void)cfg, (void)err, (void)errlen;
    return 0;
}

void llm_free(llm *l)
{
    free(l);
}

bool llm_available(const llm *l)
{
    (void)l;
    return false;
}

int llm_complete(llm *l, const llm_request *r, llm_answer *a, char *err, size_t errlen)
{
    (void)l, (void)r;
    memset(a, 0, sizeof *a);
    a->confidence = NAN;
    if (errlen)
        strncpy(err, "no language model is configured", errlen - 1), err[errlen - 1] = 0;
    return -ENOENT;
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
}

int llm_embed(llm *l, const char *const *texts, size_t n, float *out, int dims, char *err, size_t errlen)
{
    (void)l, (void)texts, (void)n, (void)out, (void)dims;
    if (errlen)
        strncpy(err, "no embeddings endpoint is configured", errlen - 1), err[errlen - 1] = 0;
    return -ENOENT;
}

int llm_embed_dims(const llm *l)
{
    (void)l;
    return 0;
}

char *llm_redact(const llm *l, const char *text, int *count)
{
    (void)l;
    if (count)
        *count = 0;
    return strdup(text ? text : "");
}

char *llm_status_json(const llm *l)
{
    (void)l;
    return strdup("{\"available\":false}");
}
