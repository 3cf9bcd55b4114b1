/*
 * commands.h: the subcommands of the cltrain program. Each takes the arguments after its
 * name and returns the process exit status: 0 success, 1 failure, 2 bad usage (train: 3 when
 * an --expect-* target is missed).
 */
#ifndef CLTRAIN_TOOLS_COMMANDS_H
#define CLTRAIN_TOOLS_COMMANDS_H

int cmd_devices(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_predict(int argc, char **argv);

#endif
