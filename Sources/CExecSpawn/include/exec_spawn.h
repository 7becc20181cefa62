/* The C side of `wsctl serve --exec`: starting `/bin/sh -c COMMAND` with pipes (glibc's pipe2 and
 * posix_spawn_file_actions_addclosefrom_np are GNU extensions Swift's Glibc module does not show). */
#ifndef WSCTL_EXEC_SPAWN_H
#define WSCTL_EXEC_SPAWN_H

#include <sys/types.h>

/* Starts argv[0] with argv and envp (NULL-terminated) in a new process group, with its stdin,
 * stdout and stderr on fresh pipes, every other descriptor closed, no signal blocked and the
 * usual signals at their defaults. Our ends come back close-on-exec. Returns 0, or an errno. */
int wsx_spawn(const char *const argv[], const char *const envp[], pid_t *pid, int *stdin_write, int *stdout_read,
              int *stderr_read);

#endif
