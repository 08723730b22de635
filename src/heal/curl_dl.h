/* curl_dl.h: libcurl loaded at run time (dlopen), not linked.
 *
 * Linking libcurl maps it and everything it needs (libssl, libcrypto,
 * Kerberos, LDAP, libssh2, ...) into ippocd at start, about 3 MB of
 * resident pages, though only HTTP probes and webhooks use it. Heal's files
 * include this header instead of <curl/curl.h>: the curl_* calls below go
 * through pointers filled by heal_curl_load(), which heal_curl_ready()
 * calls the first time a probe or webhook needs libcurl. Calling any of
 * them before a successful load is a bug. */
#ifndef IPPOC_HEAL_CURL_DL_H
#define IPPOC_HEAL_CURL_DL_H

#include <curl/curl.h>
#include <stddef.h>

typedef struct heal_curl_api {
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
} heal_curl_api;

extern heal_curl_api heal_curl;

/* dlopen("libcurl.so.4") and look up every function above, once (thread
 * safe). 0, or -ENOENT with the loader's reason in err. */
int heal_curl_load(char *err, size_t errlen);

/* The typecheck macros of <curl/curl.h> call the functions by name: replace
 * them and the rest by the loaded pointers. */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init (*heal_curl.global_init)
#define curl_version_info (*heal_curl.version_info)
#define curl_free (*heal_curl.free_)
#define curl_easy_init (*heal_curl.easy_init)
#define curl_easy_setopt (*heal_curl.easy_setopt)
#define curl_easy_getinfo (*heal_curl.easy_getinfo)
#define curl_easy_perform (*heal_curl.easy_perform)
#define curl_easy_cleanup (*heal_curl.easy_cleanup)
#define curl_easy_strerror (*heal_curl.easy_strerror)
#define curl_slist_append (*heal_curl.slist_append)
#define curl_slist_free_all (*heal_curl.slist_free_all)
#define curl_multi_init (*heal_curl.multi_init)
#define curl_multi_setopt (*heal_curl.multi_setopt)
#define curl_multi_add_handle (*heal_curl.multi_add_handle)
#define curl_multi_remove_handle (*heal_curl.multi_remove_handle)
#define curl_multi_socket_action (*heal_curl.multi_socket_action)
#define curl_multi_assign (*heal_curl.multi_assign)
#define curl_multi_info_read (*heal_curl.multi_info_read)
#define curl_multi_cleanup (*heal_curl.multi_cleanup)
#define curl_multi_strerror (*heal_curl.multi_strerror)
#define curl_url (*heal_curl.url)
#define curl_url_set (*heal_curl.url_set)
#define curl_url_get (*heal_curl.url_get)
#define curl_url_cleanup (*heal_curl.url_cleanup)
#define curl_url_strerror (*heal_curl.url_strerror)

#endif
