/* See include/lua_sandbox.h. */
#include "lua_sandbox.h"

#include <stdlib.h>
#include <lua5.4/lauxlib.h>
#include <lua5.4/lualib.h>

/* Instructions between two budget checks. */
#define BUDGET_STEP 1000

typedef struct {
    size_t used;
    size_t limit;
    int enforced;
    int64_t budget;
    int64_t left;
    int exhausted;
    int depth;
    void *host;
    wsl_dispatch_fn dispatch;
} wsl_box;

static wsl_box *box_of(lua_State *L) {
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return (wsl_box *)ud;
}

/* lua_Alloc with accounting: refuses to grow past the limit while it is enforced. Lua answers a
 * refusal with an emergency collection and a retry, then a "not enough memory" error. */
static void *box_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    wsl_box *b = (wsl_box *)ud;
    if (ptr == NULL) osize = 0; /* osize is then a type tag, not a size */
    if (nsize == 0) {
        free(ptr);
        b->used -= osize;
        return NULL;
    }
    if (nsize > osize && b->enforced && b->used - osize + nsize > b->limit) return NULL;
    void *p = realloc(ptr, nsize);
    if (p == NULL) return NULL;
    b->used = b->used - osize + nsize;
    return p;
}

/* The count hook. Once the budget is spent the hook fires on every instruction of whatever thread
 * runs and raises each time, so a script that catches the error with pcall cannot keep going: the
 * first instruction it runs outside the pcall raises again. */
static void box_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    wsl_box *b = box_of(L);
    if (b->budget <= 0) return;
    int step = lua_gethookcount(L);
    b->left -= step;
    if (b->left <= 0) {
        b->exhausted = 1;
        if (step != 1) lua_sethook(L, box_hook, LUA_MASKCOUNT, 1);
        /* Level 0 inside a hook is the Lua function that was running: its file:line. */
        luaL_where(L, 0);
        lua_pushfstring(L, "instruction budget exceeded (%I instructions per call)", (lua_Integer)b->budget);
        lua_concat(L, 2);
        lua_error(L);
    } else if (step != BUDGET_STEP) {
        /* A thread left at step 1 by an earlier call. */
        lua_sethook(L, box_hook, LUA_MASKCOUNT, BUDGET_STEP);
    }
}

/* load() that reads text only: precompiled chunks can crash the VM. */
static int safe_load(lua_State *L) {
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    if (n >= 2) lua_pushvalue(L, 2); else lua_pushnil(L);
    lua_pushliteral(L, "t");
    int args = 3;
    if (n >= 4) { lua_pushvalue(L, 4); args = 4; } /* an explicit nil env differs from none */
    lua_call(L, args, LUA_MULTRET);
    return lua_gettop(L) - n;
}

static void remove_fields(lua_State *L, const char *table, const char *const *names) {
    lua_getglobal(L, table);
    for (; *names; names++) {
        lua_pushnil(L);
        lua_setfield(L, -2, *names);
    }
    lua_pop(L, 1);
}

static int setup(lua_State *L) {
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base}, {LUA_TABLIBNAME, luaopen_table}, {LUA_STRLIBNAME, luaopen_string},
        {LUA_MATHLIBNAME, luaopen_math}, {LUA_UTF8LIBNAME, luaopen_utf8}, {LUA_COLIBNAME, luaopen_coroutine},
        {LUA_OSLIBNAME, luaopen_os}, {NULL, NULL},
    };
    for (const luaL_Reg *lib = libs; lib->func; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    static const char *const base[] = {"dofile", "loadfile", NULL};
    static const char *const string[] = {"dump", NULL};
    static const char *const os[] = {"execute", "exit", "getenv", "remove", "rename", "setlocale", "tmpname", NULL};
    remove_fields(L, LUA_GNAME, base);
    remove_fields(L, LUA_STRLIBNAME, string);
    remove_fields(L, LUA_OSLIBNAME, os);
    lua_getglobal(L, "load");
    lua_pushcclosure(L, safe_load, 1);
    lua_setglobal(L, "load");
    return 0;
}

lua_State *wsl_open(size_t memory_limit, void *host, wsl_dispatch_fn dispatch) {
    wsl_box *b = calloc(1, sizeof *b);
    if (b == NULL) return NULL;
    b->limit = memory_limit;
    b->host = host;
    b->dispatch = dispatch;
    lua_State *L = lua_newstate(box_alloc, b);
    if (L == NULL) {
        free(b);
        return NULL;
    }
    lua_pushcfunction(L, setup);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        lua_close(L);
        free(b);
        return NULL;
    }
    lua_sethook(L, box_hook, LUA_MASKCOUNT, BUDGET_STEP);
    return L;
}

void wsl_close(lua_State *L) {
    wsl_box *b = box_of(L);
    lua_close(L);
    free(b);
}

size_t wsl_memory_used(lua_State *L) { return box_of(L)->used; }
size_t wsl_memory_limit(lua_State *L) { return box_of(L)->limit; }
void wsl_set_limit_enforced(lua_State *L, int enforced) { box_of(L)->enforced = enforced; }

void wsl_set_budget(lua_State *L, int64_t instructions) { box_of(L)->budget = instructions; }
int wsl_budget_exhausted(lua_State *L) { return box_of(L)->exhausted; }

int wsl_load_file(lua_State *L, const char *path) { return luaL_loadfilex(L, path, "t"); }

int wsl_load_buffer(lua_State *L, const char *text, size_t length, const char *name) {
    return luaL_loadbufferx(L, text, length, name, "t");
}

/* Message handler: the error text with a traceback (non-string errors described). */
static int traceback(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) msg = lua_tostring(L, -1);
        else msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int wsl_pcall(lua_State *L, int nargs, int nresults) {
    wsl_box *b = box_of(L);
    int handler = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, handler);
    /* A nested call (the host calling Lua from inside a host function) shares the outer budget. */
    if (b->depth == 0) {
        b->left = b->budget;
        b->exhausted = 0;
        lua_sethook(L, box_hook, LUA_MASKCOUNT, BUDGET_STEP);
    }
    int enforced = b->enforced;
    b->enforced = 1;
    b->depth++;
    int status = lua_pcall(L, nargs, nresults, handler);
    b->depth--;
    b->enforced = enforced;
    lua_remove(L, handler);
    return status;
}

static int host_trampoline(lua_State *L) {
    wsl_box *b = box_of(L);
    int op = (int)lua_tointeger(L, lua_upvalueindex(1));
    int enforced = b->enforced;
    b->enforced = 0;
    int n = b->dispatch(b->host, L, op);
    b->enforced = enforced;
    if (n < 0) {
        /* The message gets the caller's file:line, as luaL_error gives. */
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
        return lua_error(L);
    }
    return n;
}

void wsl_push_host_function(lua_State *L, int op) {
    lua_pushinteger(L, op);
    lua_pushcclosure(L, host_trampoline, 1);
}

void wsl_gc_collect(lua_State *L) { lua_gc(L, LUA_GCCOLLECT); }

void wsl_pop(lua_State *L, int n) { lua_pop(L, n); }
void wsl_newtable(lua_State *L) { lua_newtable(L); }
int wsl_registry_index(void) { return LUA_REGISTRYINDEX; }
const char *wsl_tostring(lua_State *L, int index, size_t *length) { return lua_tolstring(L, index, length); }
