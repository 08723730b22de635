/* nx_stub_sys.c: placeholders for node_exporter collectors not written yet (each
 * reports success and no families). Removed as the collectors land. */
#include "sense/nx_int.h"

NX_COLLECTOR(meminfo) { (void)x; return 0; }
NX_COLLECTOR(vmstat) { (void)x; return 0; }
NX_COLLECTOR(pressure) { (void)x; return 0; }
NX_COLLECTOR(filefd) { (void)x; return 0; }
NX_COLLECTOR(entropy) { (void)x; return 0; }
NX_COLLECTOR(time) { (void)x; return 0; }
NX_COLLECTOR(timex) { (void)x; return 0; }
NX_COLLECTOR(uname) { (void)x; return 0; }
NX_COLLECTOR(os) { (void)x; return 0; }
NX_COLLECTOR(selinux) { (void)x; return 0; }
NX_COLLECTOR(cpufreq) { (void)x; return 0; }
NX_COLLECTOR(thermal_zone) { (void)x; return 0; }
NX_COLLECTOR(hwmon) { (void)x; return 0; }
NX_COLLECTOR(powersupplyclass) { (void)x; return 0; }
NX_COLLECTOR(edac) { (void)x; return 0; }
