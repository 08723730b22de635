/* cmd_evolve_code.c: `ippoc evolve code` and `ippoc evolve accept`
 * (self-code evolution). STAND-IN: the code part replaces it. */
#include "cli/cli.h"

int cmd_evolve_code(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "ippoc: evolve code: not built yet\n");
    return CLI_EXIT_USAGE;
}

int cmd_evolve_accept(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "ippoc: evolve accept: not built yet\n");
    return CLI_EXIT_USAGE;
}
