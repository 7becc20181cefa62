#define _GNU_SOURCE
#include "stdio_cookie.h"

FILE *wsctl_stdio_cookie_open(void *cookie,
                              ssize_t (*read)(void *cookie, char *buffer, size_t size),
                              int (*seek)(void *cookie, int64_t *offset, int whence),
                              int (*close)(void *cookie)) {
    cookie_io_functions_t functions = {
        .read = read,
        .write = NULL,
        .seek = (cookie_seek_function_t *)seek,
        .close = close,
    };
    return fopencookie(cookie, "rb", functions);
}
