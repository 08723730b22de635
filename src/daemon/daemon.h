/* daemon.h: ippocd's life cycle, shared by main.c and daemon.c only: the
 * options from the command line and the entry point that runs the loop. */
#ifndef IPPOC_DAEMON_H
#define IPPOC_DAEMON_H

#include "core/core.h"

typedef struct daemon_opts {
    const char *config_path; /* NULL: /etc/ippoc/ippoc.conf, optional */
    bool config_required;
    const char *state_dir;   /* command-line overrides, NULL if not given */
    const char *listen;
    const char *log_level;
    bool log_syslog_set;
    bool dry_run;            /* --dry-run: [heal] dry_run = yes, whatever the files say */
    bool log_syslog;
} daemon_opts;

/* Builds the configuration: defaults, then files, then command line. */
int daemon_load_config(const daemon_opts *o, core_config *c, char *err, size_t errlen);
/* Runs the cell until SIGTERM/SIGINT. Returns the process exit code. */
int daemon_run(const daemon_opts *o, core_config *cfg);

#endif
