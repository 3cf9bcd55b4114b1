/*
 * commands.h: the subcommands of the cltrain program. Each takes the arguments after its
 * name and returns the process exit status: 0 success, 1 failure, 2 bad usage.
 */
#ifndef CLTRAIN_TOOLS_COMMANDS_H
#define CLTRAIN_TOOLS_COMMANDS_H

int cmd_devices(int argc, char **argv);

#endif
