/*
 * The C side of `wsctl serve --script`: a Lua 5.4 state with a memory cap, an instruction budget,
 * only the safe standard libraries, and one entry point through which every `ws`/`conn` function
 * reaches the Swift host.
 *
 * Why C: Lua reports errors with longjmp. Everything here that can raise (argument errors, the
 * budget hook, allocation failures inside protected calls) runs in C frames between Lua and the
 * host, so a longjmp never unwinds a Swift frame. The host's dispatch function never raises: it
 * returns -1 with a message on the stack and the trampoline raises for it.
 */
#ifndef WSCTL_LUA_SANDBOX_H
#define WSCTL_LUA_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <lua5.4/lua.h>

/* Called for every host function. `op` is the number given to wsl_push_host_function. Returns the
 * number of results it pushed, or -1 after pushing an error message (the trampoline raises it). */
typedef int (*wsl_dispatch_fn)(void *host, lua_State *L, int op);

/* A new sandboxed state: base (without dofile, loadfile; load reads text chunks only), string
 * (without dump), table, math, utf8, coroutine, and os with only clock, date, difftime and time.
 * No io, package, require or debug. NULL when the state cannot be allocated. */
lua_State *wsl_open(size_t memory_limit, void *host, wsl_dispatch_fn dispatch);
void wsl_close(lua_State *L);

/* Bytes the state has allocated now, and the most it may. */
size_t wsl_memory_used(lua_State *L);
size_t wsl_memory_limit(lua_State *L);
/* While off, allocations beyond the limit succeed (they are still counted): the host turns it off
 * while it pushes values Lua asked for, so that a push never fails outside a protected call. */
void wsl_set_limit_enforced(lua_State *L, int enforced);

/* The instruction budget for the next protected call (0: none). Counted in steps of 1,000. */
void wsl_set_budget(lua_State *L, int64_t instructions);
/* Whether the last protected call ran out of budget. */
int wsl_budget_exhausted(lua_State *L);

/* Loads a file as a text chunk named "@path"; LUA_OK or an error with the message on the stack. */
int wsl_load_file(lua_State *L, const char *path);
/* Loads a text chunk from memory. */
int wsl_load_buffer(lua_State *L, const char *text, size_t length, const char *name);

/* lua_pcall with a message handler that appends a traceback; on error the message is on the stack.
 * The memory limit is enforced during the call. */
int wsl_pcall(lua_State *L, int nargs, int nresults);

/* Pushes a C closure that calls the host's dispatch with `op`. */
void wsl_push_host_function(lua_State *L, int op);

/* A full garbage collection (after an error, to give memory back at once). */
void wsl_gc_collect(lua_State *L);

/* Macros of lua.h that Swift cannot import. */
void wsl_pop(lua_State *L, int n);
void wsl_newtable(lua_State *L);
int wsl_registry_index(void);
const char *wsl_tostring(lua_State *L, int index, size_t *length);

#endif
