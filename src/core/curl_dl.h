/* curl_dl.h: libcurl loaded at run time (dlopen), not linked.
 *
 * Linking libcurl maps it and everything it needs (libssl, libcrypto,
 * Kerberos, LDAP, libssh2, ...) into ippocd at start, about 3 MB of
 * resident pages, though only HTTP probes, webhooks and the language-model
 * client use it. Their files include this header instead of <curl/curl.h>:
 * the curl_* calls below go through pointers filled by core_curl_load(),
 * which core_curl_ready() (heal_curl_ready(), llm) calls the first time
 * libcurl is needed. Calling any of them before a successful load is a bug. */
#ifndef IPPOC_CORE_CURL_DL_H
#define IPPOC_CORE_CURL_DL_H

#include <curl/curl.h>
#include <stddef.h>

typedef struct core_curl_api {
    CURLcode (*global_init)(long flags);
    curl_version_info_data *(*version_info)(CURLversion v);
    void (*free_)(void *p);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
    CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
    CURLcode (*easy_perform)(CURL *h);
    void (*easy_cleanup)(CURL *h);
    const char *(*easy_strerror)(CURLcode c);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_setopt)(CURLM *m, CURLMoption opt, ...);
    CURLMcode (*multi_add_handle)(CURLM *m, CURL *h);
    CURLMcode (*multi_remove_handle)(CURLM *m, CURL *h);
    CURLMcode (*multi_socket_action)(CURLM *m, curl_socket_t s, int ev, int *running);
    CURLMcode (*multi_assign)(CURLM *m, curl_socket_t s, void *p);
    CURLMsg *(*multi_info_read)(CURLM *m, int *left);
    CURLMcode (*multi_cleanup)(CURLM *m);
    const char *(*multi_strerror)(CURLMcode c);
    CURLU *(*url)(void);
    CURLUcode (*url_set)(CURLU *u, CURLUPart what, const char *part, unsigned int flags);
    CURLUcode (*url_get)(const CURLU *u, CURLUPart what, char **part, unsigned int flags);
    void (*url_cleanup)(CURLU *u);
    const char *(*url_strerror)(CURLUcode c);
} core_curl_api;

extern core_curl_api core_curl;

/* dlopen("libcurl.so.4") and look up every function above, once (thread
 * safe). 0, or -ENOENT with the loader's reason in err. */
int core_curl_load(char *err, size_t errlen);
/* core_curl_load() and curl_global_init(CURL_GLOBAL_DEFAULT), once for the
 * process (thread safe): 0, -ENOENT (no libcurl) or -EIO with err. */
int core_curl_ready(char *err, size_t errlen);

/* The typecheck macros of <curl/curl.h> call the functions by name: replace
 * them and the rest by the loaded pointers. */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init (*core_curl.global_init)
#define curl_version_info (*core_curl.version_info)
#define curl_free (*core_curl.free_)
#define curl_easy_init (*core_curl.easy_init)
#define curl_easy_setopt (*core_curl.easy_setopt)
#define curl_easy_getinfo (*core_curl.easy_getinfo)
#define curl_easy_perform (*core_curl.easy_perform)
#define curl_easy_cleanup (*core_curl.easy_cleanup)
#define curl_easy_strerror (*core_curl.easy_strerror)
#define curl_slist_append (*core_curl.slist_append)
#define curl_slist_free_all (*core_curl.slist_free_all)
#define curl_multi_init (*core_curl.multi_init)
#define curl_multi_setopt (*core_curl.multi_setopt)
#define curl_multi_add_handle (*core_curl.multi_add_handle)
#define curl_multi_remove_handle (*core_curl.multi_remove_handle)
#define curl_multi_socket_action (*core_curl.multi_socket_action)
#define curl_multi_assign (*core_curl.multi_assign)
#define curl_multi_info_read (*core_curl.multi_info_read)
#define curl_multi_cleanup (*core_curl.multi_cleanup)
#define curl_multi_strerror (*core_curl.multi_strerror)
#define curl_url (*core_curl.url)
#define curl_url_set (*core_curl.url_set)
#define curl_url_get (*core_curl.url_get)
#define curl_url_cleanup (*core_curl.url_cleanup)
#define curl_url_strerror (*core_curl.url_strerror)

#endif
