/* log.c: the leveled logger shared by every module: stderr (with timestamps)
 * or syslog, which the systemd journal collects. Safe from any thread. */
#include "core/core.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

static atomic_int g_level = CORE_LOG_INFO; /* read unlocked by every thread, set by a reload */
static int g_syslog;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const level_names[] = {"error", "warning", "info", "debug"};

void core_log_setup(int level, int to_syslog)
{
    pthread_mutex_lock(&g_lock);
    if (to_syslog && !g_syslog)
        openlog("ippocd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    else if (!to_syslog && g_syslog)
        closelog();
    atomic_store(&g_level, level);
    g_syslog = to_syslog;
    pthread_mutex_unlock(&g_lock);
}

int core_log_level(void) { return atomic_load(&g_level); }

int core_log_level_parse(const char *s)
{
    if (!strcmp(s, "warn"))
        return CORE_LOG_WARN;
    if (!strcmp(s, "err"))
        return CORE_LOG_ERR;
    for (int i = 0; i <= CORE_LOG_DEBUG; i++)
        if (!strcmp(s, level_names[i]))
            return i;
    return -1;
}

void core_log(int level, const char *fmt, ...)
{
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    if (level > atomic_load(&g_level) || level < 0)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&g_lock);
    if (g_syslog) {
        syslog(prio[level], "%s", msg);
    } else {
        struct timespec ts;
        struct tm tm;
        char when[32];
        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ld %-7s %s\n", when, ts.tv_nsec / 1000000, level_names[level], msg);
    }
    pthread_mutex_unlock(&g_lock);
}
