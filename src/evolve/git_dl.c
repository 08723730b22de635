/* git_dl.c: loads libgit2 at run time for the genome and unloads it after
 * EVOLVE_GIT_IDLE_MS without a caller (see git_dl.h for why). One mutex
 * guards the handle, the count of callers holding it and the time the last
 * one let go; a timer thread, alive while a genome is open, unloads. */
#define EVOLVE_GIT_DL_TABLE_ONLY
#include "evolve/git_dl.h"

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

evolve_git_api evolve_git;

#define EVOLVE_GIT_SYM(f) {#f, offsetof(evolve_git_api, f)},
static const struct {
    const char *name;
    size_t off;
} syms[] = {EVOLVE_GIT_FUNCS(EVOLVE_GIT_SYM)};

static pthread_mutex_t life_mu = PTHREAD_MUTEX_INITIALIZER; /* open_user/close_user, in turn */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;      /* everything below */
static pthread_cond_t cv;                                   /* CLOCK_MONOTONIC */
static void *handle;
static int holders, genomes;
static bool timer_on, timer_stop;
static pthread_t timer;
static struct timespec last_release;
static long idle_ms = EVOLVE_GIT_IDLE_MS;

static int load_locked(char *err, size_t n)
{
    const char *name = "libgit2.so.1.5";
    void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        char why[256];
        snprintf(why, sizeof why, "%s", dlerror());
        name = "libgit2.so";
        h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            snprintf(err, n, "genome: cannot load libgit2 (install the libgit2-1.5 package): %s", why);
            return -ENOENT;
        }
        int (*version)(int *, int *, int *) = NULL;
        void *v = dlsym(h, "git_libgit2_version");
        memcpy(&version, &v, sizeof v);
        int maj = 0, min = 0, rev = 0;
        if (!version || version(&maj, &min, &rev) < 0 || maj != 1 || min != 5) {
            snprintf(err, n, "genome: libgit2.so is version %d.%d, not 1.5 (install the libgit2-1.5 package)",
                     maj, min);
            dlclose(h);
            return -ENOENT;
        }
    }
    evolve_git_api api;
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *f = dlsym(h, syms[i].name);
        if (!f) {
            snprintf(err, n, "genome: %s has no %s (install the libgit2-1.5 package)", name, syms[i].name);
            dlclose(h);
            return -ENOENT;
        }
        memcpy((char *)&api + syms[i].off, &f, sizeof f); /* object to function pointer */
    }
    evolve_git = api;
    if (evolve_git.git_libgit2_init() < 0) {
        snprintf(err, n, "genome: libgit2 does not start (git_libgit2_init failed)");
        memset(&evolve_git, 0, sizeof evolve_git);
        dlclose(h);
        return -EIO;
    }
    handle = h;
    return 0;
}

/* Balances load_locked's git_libgit2_init and gives the pages back. */
static void unload_locked(void)
{
    if (!handle)
        return;
    evolve_git.git_libgit2_shutdown();
    memset(&evolve_git, 0, sizeof evolve_git);
    dlclose(handle);
    handle = NULL;
    malloc_trim(0);
}

int evolve_git_acquire(char *err, size_t errlen)
{
    pthread_mutex_lock(&mu);
    int rc = handle ? 0 : load_locked(err, errlen);
    if (rc == 0)
        holders++;
    pthread_mutex_unlock(&mu);
    return rc;
}

void evolve_git_release(void)
{
    pthread_mutex_lock(&mu);
    if (holders > 0 && --holders == 0) {
        clock_gettime(CLOCK_MONOTONIC, &last_release);
        pthread_cond_broadcast(&cv);
    }
    pthread_mutex_unlock(&mu);
}

bool evolve_git_loaded(void)
{
    pthread_mutex_lock(&mu);
    bool l = handle != NULL;
    pthread_mutex_unlock(&mu);
    return l;
}

static bool past(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* Unloads once the library has had no holder for idle_ms. */
static void *timer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!timer_stop) {
        if (!handle || holders > 0) {
            pthread_cond_wait(&cv, &mu);
            continue;
        }
        struct timespec due = last_release;
        due.tv_sec += idle_ms / 1000;
        due.tv_nsec += (idle_ms % 1000) * 1000000L;
        if (due.tv_nsec >= 1000000000L)
            due.tv_sec++, due.tv_nsec -= 1000000000L;
        if (past(&due))
            unload_locked();
        else
            pthread_cond_timedwait(&cv, &mu, &due);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void cv_init_once(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&cv, &a);
    pthread_condattr_destroy(&a);
}

void evolve_git_open_user(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, cv_init_once);
    pthread_mutex_lock(&life_mu);
    pthread_mutex_lock(&mu);
    if (genomes++ == 0) {
        const char *e = getenv("IPPOC_GIT_IDLE_MS");
        char *end = NULL;
        long v = e && *e ? strtol(e, &end, 10) : -1;
        idle_ms = v >= 0 && end && !*end ? v : EVOLVE_GIT_IDLE_MS;
        timer_stop = false;
        /* without the thread the library stays loaded until the last close */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old); /* signals go to the loop thread */
        timer_on = pthread_create(&timer, NULL, timer_main, NULL) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (timer_on)
            pthread_setname_np(timer, "ippoc-git-idle");
    }
    pthread_mutex_unlock(&mu);
    pthread_mutex_unlock(&life_mu);
}

void evolve_git_close_user(void)
{
    pthread_mutex_lock(&life_mu);
    pthread_mutex_lock(&mu);
    if (genomes > 0 && --genomes == 0) {
        bool joined = timer_on;
        timer_stop = true;
        timer_on = false;
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
        if (joined)
            pthread_join(timer, NULL);
        pthread_mutex_lock(&mu);
        if (holders == 0)
            unload_locked();
    }
    pthread_mutex_unlock(&mu);
    pthread_mutex_unlock(&life_mu);
}
