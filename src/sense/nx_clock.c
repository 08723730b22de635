/* nx_clock.c: node_exporter's time and timex collectors: the wall clock, the
 * local time zone's offset, the kernel's clock sources
 * (/sys/devices/system/clocksource), and the kernel clock discipline's state
 * from adjtimex(2) with modes 0 (a read, allowed to every user). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/timex.h>
#include <time.h>

#include "sense/nx_sys.h"

static void clocksources(nx_ctx *x)
{
    struct dirent **v;
    int n = nxs_scan(x->sys, "devices/system/clocksource", "clocksource", true, &v);
    if (n < 0)
        return;
    int favail = nx_family(x, "node_time_clocksource_available_info", NX_GAUGE,
                           "Available clocksources read from '/sys/devices/system/clocksource'.");
    int fcur = nx_family(x, "node_time_clocksource_current_info", NX_GAUGE,
                         "Current clocksource read from '/sys/devices/system/clocksource'.");
    for (int i = 0; i < n; i++) {
        char dev[16], cur[64];
        snprintf(dev, sizeof dev, "%d", i); /* node_exporter numbers them in glob order */
        ssize_t len = nx_read(x, &x->rd, x->sys, "devices/system/clocksource/%s/available_clocksource",
                              v[i]->d_name);
        if (len < 0 || nx_read_str(x, x->sys, cur, sizeof cur, "devices/system/clocksource/%s/current_clocksource",
                                   v[i]->d_name) < 0)
            continue;
        const char *p = x->rd.p, *e = x->rd.p + len;
        for (;;) {
            char cs[64];
            p = sn_skip_ws(p, e);
            while (p < e && *p == '\n')
                p++;
            if (p >= e || !sn_tok(&p, e, cs, sizeof cs))
                break;
            nx_sample(x, favail, 1, 2, "clocksource", cs, "device", dev);
        }
        nx_sample(x, fcur, 1, 2, "clocksource", cur, "device", dev);
    }
    nxs_names_free(v, n);
}

NX_COLLECTOR(time)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    nx_gauge1(x, "node_time_seconds", "System time in seconds since epoch (1970).",
              (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
    struct tm tm;
    time_t now = ts.tv_sec;
    if (localtime_r(&now, &tm))
        nx_sample(x, nx_family(x, "node_time_zone_offset_seconds", NX_GAUGE, "System time zone offset in seconds."),
                  (double)tm.tm_gmtoff, 1, "time_zone", tm.tm_zone ? tm.tm_zone : "");
    clocksources(x);
    return 0;
}

#define PPM16FRAC (1000000.0 * 65536.0) /* adjtimex(2) NOTES: ppm with a 16-bit fraction */

NX_COLLECTOR(timex)
{
    struct timex t = {0};
    t.modes = 0;
    int st = adjtimex(&t);
    if (st < 0)
        return -errno;
    double div = (t.status & STA_NANO) ? 1e9 : 1e6;
    nx_gauge1(x, "node_timex_sync_status", "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
              st == TIME_ERROR ? 0 : 1);
    nx_gauge1(x, "node_timex_offset_seconds", "Time offset in between local system and reference clock.",
              (double)t.offset / div);
    nx_gauge1(x, "node_timex_frequency_adjustment_ratio", "Local clock frequency adjustment.",
              1 + (double)t.freq / PPM16FRAC);
    nx_gauge1(x, "node_timex_maxerror_seconds", "Maximum error in seconds.", (double)t.maxerror / 1e6);
    nx_gauge1(x, "node_timex_estimated_error_seconds", "Estimated error in seconds.", (double)t.esterror / 1e6);
    nx_gauge1(x, "node_timex_status", "Value of the status array bits.", (double)t.status);
    nx_gauge1(x, "node_timex_loop_time_constant", "Phase-locked loop time constant.", (double)t.constant);
    nx_gauge1(x, "node_timex_tick_seconds", "Seconds between clock ticks.", (double)t.tick / 1e6);
    nx_gauge1(x, "node_timex_pps_frequency_hertz", "Pulse per second frequency.", (double)t.ppsfreq / PPM16FRAC);
    nx_gauge1(x, "node_timex_pps_jitter_seconds", "Pulse per second jitter.", (double)t.jitter / div);
    nx_gauge1(x, "node_timex_pps_shift_seconds", "Pulse per second interval duration.", (double)t.shift);
    nx_gauge1(x, "node_timex_pps_stability_hertz", "Pulse per second stability, average of recent frequency changes.",
              (double)t.stabil / PPM16FRAC);
    nx_sample(x, nx_family(x, "node_timex_pps_jitter_total", NX_COUNTER,
                           "Pulse per second count of jitter limit exceeded events."), (double)t.jitcnt, 0);
    nx_sample(x, nx_family(x, "node_timex_pps_calibration_total", NX_COUNTER,
                           "Pulse per second count of calibration intervals."), (double)t.calcnt, 0);
    nx_sample(x, nx_family(x, "node_timex_pps_error_total", NX_COUNTER, "Pulse per second count of calibration errors."),
              (double)t.errcnt, 0);
    nx_sample(x, nx_family(x, "node_timex_pps_stability_exceeded_total", NX_COUNTER,
                           "Pulse per second count of stability limit exceeded events."), (double)t.stbcnt, 0);
    nx_gauge1(x, "node_timex_tai_offset_seconds", "International Atomic Time (TAI) offset.", (double)t.tai);
    return 0;
}
