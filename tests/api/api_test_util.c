/* api_test_util.c: see api_test_util.h. The parser runs as a child python3
 * reading the exposition from a temporary file. $IPPOC_PYTHON picks the
 * interpreter; otherwise /usr/bin/python3 (Debian's, where the package is
 * installed), then python3 from PATH. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api_test_util.h"

static const char script[] =
    "import sys\n"
    "try:\n"
    "    from prometheus_client.parser import text_string_to_metric_families\n"
    "except ImportError:\n"
    "    sys.exit(3)\n"
    "n = 0\n"
    "for fam in text_string_to_metric_families(open(sys.argv[1]).read()):\n"
    "    for s in fam.samples:\n"
    "        n += 1\n"
    "print('prometheus_client parsed %d samples' % n, file=sys.stderr)\n";

static int run(const char *py, const char *file)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' -c \"$IPPOC_PROM_SCRIPT\" '%s'", py, file);
    setenv("IPPOC_PROM_SCRIPT", script, 1);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    int code = WEXITSTATUS(st);
    return code == 0 ? 0 : (code == 3 || code == 127) ? -1 : 1;
}

int api_test_prom_parse(const char *text)
{
    char path[] = "/tmp/ippoc-prom-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len) {
        close(fd);
        unlink(path);
        return -1;
    }
    close(fd);
    const char *env = getenv("IPPOC_PYTHON");
    int rc = -1;
    if (env && *env)
        rc = run(env, path);
    if (rc == -1 && access("/usr/bin/python3", X_OK) == 0)
        rc = run("/usr/bin/python3", path);
    if (rc == -1)
        rc = run("python3", path);
    unlink(path);
    if (rc == -1)
        fprintf(stderr, "note: python3-prometheus-client not installed, exposition not parser-checked\n");
    return rc;
}
