/* sandbox.c: the WorldModel sandbox. STAND-IN: the sandbox part replaces it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "evolve/evolve.h"

int evolve_sandbox_run(const evolve_sandbox_opts *o, evolve_sandbox_result *r, char *err, size_t errlen)
{ (void)o; memset(r, 0, sizeof *r); snprintf(err, errlen, "sandbox: not built yet"); return -ENOSYS; }
void evolve_sandbox_result_free(evolve_sandbox_result *r) { (void)r; }
const char *evolve_sbx_verdict_name(evolve_sbx_verdict v)
{
    static const char *n[] = {"ok", "failed", "timeout", "memory", "write", "net", "syscall", "error"};
    return (unsigned)v < sizeof n / sizeof n[0] ? n[v] : "?";
}
bool evolve_sandbox_available(char *why, size_t n) { snprintf(why, n, "sandbox: not built yet"); return false; }
int evolve_sandbox_exec_main(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "sandbox: not built yet\n"); return 127; }
