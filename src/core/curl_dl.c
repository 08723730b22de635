/* curl_dl.c: loads libcurl at run time for HTTP probes, webhooks and the
 * language-model client (see curl_dl.h for why it is not linked). */
#include "core/curl_dl.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

core_curl_api core_curl;

#define SYM(field, name) {name, offsetof(core_curl_api, field)}
static const struct {
    const char *name;
    size_t off;
} syms[] = {
    SYM(global_init, "curl_global_init"), SYM(version_info, "curl_version_info"),
    SYM(free_, "curl_free"), SYM(easy_init, "curl_easy_init"),
    SYM(easy_setopt, "curl_easy_setopt"), SYM(easy_getinfo, "curl_easy_getinfo"),
    SYM(easy_perform, "curl_easy_perform"), SYM(easy_cleanup, "curl_easy_cleanup"),
    SYM(easy_strerror, "curl_easy_strerror"), SYM(slist_append, "curl_slist_append"),
    SYM(slist_free_all, "curl_slist_free_all"), SYM(multi_init, "curl_multi_init"),
    SYM(multi_setopt, "curl_multi_setopt"), SYM(multi_add_handle, "curl_multi_add_handle"),
    SYM(multi_remove_handle, "curl_multi_remove_handle"),
    SYM(multi_socket_action, "curl_multi_socket_action"),
    SYM(multi_assign, "curl_multi_assign"), SYM(multi_info_read, "curl_multi_info_read"),
    SYM(multi_cleanup, "curl_multi_cleanup"), SYM(multi_strerror, "curl_multi_strerror"),
    SYM(url, "curl_url"), SYM(url_set, "curl_url_set"), SYM(url_get, "curl_url_get"),
    SYM(url_cleanup, "curl_url_cleanup"), SYM(url_strerror, "curl_url_strerror"),
};

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_err[256];

static void load(void)
{
    void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(load_err, sizeof load_err, "cannot load libcurl: %s", dlerror());
        return;
    }
    core_curl_api api;
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *f = dlsym(h, syms[i].name);
        if (!f) {
            snprintf(load_err, sizeof load_err, "libcurl.so.4 has no %s (libcurl 7.80 or newer needed)",
                     syms[i].name);
            dlclose(h);
            return;
        }
        memcpy((char *)&api + syms[i].off, &f, sizeof f); /* object to function pointer */
    }
    core_curl = api;
}

int core_curl_load(char *err, size_t errlen)
{
    pthread_once(&load_once, load);
    if (core_curl.global_init)
        return 0;
    snprintf(err, errlen, "%s", load_err);
    return -ENOENT;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static CURLcode init_rc = CURLE_FAILED_INIT;

static void init_curl(void)
{
    init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int core_curl_ready(char *err, size_t errlen)
{
    int lrc = core_curl_load(err, errlen);
    if (lrc)
        return lrc;
    pthread_once(&init_once, init_curl);
    if (init_rc == CURLE_OK)
        return 0;
    snprintf(err, errlen, "curl_global_init: %s", curl_easy_strerror(init_rc));
    return -EIO;
}
