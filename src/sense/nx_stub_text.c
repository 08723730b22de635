/* nx_stub_text.c: placeholders for node_exporter collectors not written yet (each
 * reports success and no families). Removed as the collectors land. */
#include "sense/nx_int.h"

NX_COLLECTOR(textfile) { (void)x; return 0; }
