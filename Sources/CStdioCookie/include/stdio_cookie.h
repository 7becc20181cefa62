#ifndef WSCTL_STDIO_COOKIE_H
#define WSCTL_STDIO_COOKIE_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/// A read-only stdio stream whose reads and seeks are the given functions (glibc's fopencookie,
/// which Swift's Glibc module does not show): `read` returns bytes copied, 0 at the end, -1 on
/// error; `seek` moves to `*offset` (SEEK_SET or SEEK_CUR), stores the new position there and
/// returns 0, or -1; `close` runs once, from fclose. NULL if the stream cannot be made.
FILE *wsctl_stdio_cookie_open(void *cookie,
                              ssize_t (*read)(void *cookie, char *buffer, size_t size),
                              int (*seek)(void *cookie, int64_t *offset, int whence),
                              int (*close)(void *cookie));

#endif
