/* nx_stub_io.c: placeholders for node_exporter collectors not written yet (each
 * reports success and no families). Removed as the collectors land. */
#include "sense/nx_int.h"

NX_COLLECTOR(bcache) { (void)x; return 0; }
NX_COLLECTOR(btrfs) { (void)x; return 0; }
NX_COLLECTOR(xfs) { (void)x; return 0; }
