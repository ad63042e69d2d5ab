/* recipe.c: see recipe.h. */
#include "recipe.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "core/kernels.h"
#include "core/util.h"

/* package.searchers entry: "unforget" -> lua/unforget/init.lua, "unforget.x" -> unforget/x.lua */
static int embedded_searcher(lua_State *L) {
    const char *mod = luaL_checkstring(L, 1);
    char path[256];
    char name[200];
    snprintf(name, sizeof name, "%s", mod);
    for (char *p = name; *p; p++) if (*p == '.') *p = '/';
    for (int pass = 0; pass < 2; pass++) {
        snprintf(path, sizeof path, pass == 0 ? "%s.lua" : "%s/init.lua", name);
        for (const struct uf_kernel_source *s = uf_lua_sources; s->name; s++) {
            if (strcmp(s->name, path) != 0) continue;
            char chunk[300];
            snprintf(chunk, sizeof chunk, "=[unforget]/%s", path);
            if (luaL_loadbuffer(L, s->source, s->size, chunk) != LUA_OK) return lua_error(L);
            lua_pushstring(L, path);
            return 2;
        }
    }
    lua_pushfstring(L, "\n\tno embedded module '%s'", mod);
    return 1;
}

int uf_recipe_safe;

/* ---- evaluation time limit: a count hook compares the clock every 2^20 instructions ---------- */
static double deadline, limit_s;

static void time_hook(lua_State *L, lua_Debug *ar) {
    if (uf_time_now() <= deadline) return;
    lua_getinfo(L, "Sl", ar);
    if (ar->currentline > 0) lua_pushfstring(L, "%s:%d: ", ar->short_src, ar->currentline);
    else lua_pushstring(L, "");
    luaL_error(L, "%sthe recipe did not finish evaluating within %d s (an endless loop?); "
                      "UNFORGET_RECIPE_TIMEOUT=SECONDS sets the limit", lua_tostring(L, -1),
               (int)(limit_s + 0.5));
}

/* --safe: no os / io, no C modules, no bytecode, require only next to the recipe (and the
 * embedded library), no debug (which could remove the time limit). */
static void sandbox(lua_State *L, const char *dir) {
    static const char *const drop[] = {"io", "dofile", "loadfile", "debug"};
    for (size_t i = 0; i < UF_ARRAY_LEN(drop); i++) {
        lua_pushnil(L);
        lua_setglobal(L, drop[i]);
    }
    lua_getglobal(L, "os"); /* keep the harmless clock functions */
    lua_newtable(L);
    static const char *const keep[] = {"time", "clock", "date", "difftime"};
    for (size_t i = 0; i < UF_ARRAY_LEN(keep); i++) {
        lua_getfield(L, -2, keep[i]);
        lua_setfield(L, -2, keep[i]);
    }
    lua_setglobal(L, "os");
    lua_pop(L, 1);
    /* load: text chunks only */
    (void)luaL_dostring(L, "local load0 = load; load = function(c, n, _, e) return load0(c, n, 't', e) end");
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/?.lua", dir);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, "");
    lua_setfield(L, -2, "cpath");
    lua_pushnil(L);
    lua_setfield(L, -2, "loadlib");
    lua_getfield(L, -1, "searchers"); /* embedded, preload, Lua files; drop the C searchers */
    for (lua_Integer i = (lua_Integer)luaL_len(L, -1); i > 3; i--) {
        lua_pushnil(L);
        lua_rawseti(L, -2, i);
    }
    lua_pop(L, 2);
}

static int traceback(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    lua_pushstring(L, msg ? msg : "(error object is not a string)");
    return 1;
}

char *uf_recipe_plan_json(const char *path, int nsets, char **sets) {
    lua_State *L = luaL_newstate();
    if (!L) uf_fatal(1, "out of memory creating the Lua state");
    luaL_openlibs(L);
    /* Put the embedded searcher first. */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchers");
    lua_Integer n = (lua_Integer)luaL_len(L, -1);
    for (lua_Integer i = n; i >= 1; i--) {
        lua_rawgeti(L, -1, i);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushcfunction(L, embedded_searcher);
    lua_rawseti(L, -2, 1);
    lua_pop(L, 1); /* searchers; package stays on top */
    /* a recipe may `require` Lua modules that sit next to it (a shared stage, a grid) */
    const char *slash = strrchr(path, '/');
    char *dir = slash ? uf_strndup(path, (size_t)(slash - path)) : uf_strdup(".");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s", dir, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);
    const char *tl = getenv("UNFORGET_RECIPE_TIMEOUT");
    limit_s = tl && *tl ? strtod(tl, NULL) : 60.0;
    if (!(limit_s > 0)) limit_s = 60.0;
    deadline = uf_time_now() + limit_s;
    lua_sethook(L, time_hook, LUA_MASKCOUNT, 1 << 20);

    char *result = NULL;
    lua_pushcfunction(L, traceback);
    int errfn = lua_gettop(L);
    /* uf = require "unforget"; uf._set = { ... } */
    lua_getglobal(L, "require");
    lua_pushstring(L, "unforget");
    if (lua_pcall(L, 1, 1, errfn) != LUA_OK) {
        uf_fail("loading the recipe library: %s", lua_tostring(L, -1));
        goto out;
    }
    lua_newtable(L);
    for (int i = 0; i < nsets; i++) {
        const char *eq = strchr(sets[i], '=');
        if (!eq || eq == sets[i]) {
            uf_fail("--set %s: expected key=value", sets[i]);
            goto out;
        }
        lua_pushlstring(L, sets[i], (size_t)(eq - sets[i]));
        lua_pushstring(L, eq + 1);
        lua_settable(L, -3);
    }
    lua_setfield(L, -2, "_set");
    int uf_idx = lua_gettop(L);
    const char *safe_env = getenv("UNFORGET_SAFE");
    if (uf_recipe_safe || (safe_env && strcmp(safe_env, "1") == 0)) sandbox(L, dir);

    if (!uf_file_exists(path)) {
        uf_fail("recipe %s does not exist", path);
        goto out;
    }
    if (luaL_loadfile(L, path) != LUA_OK) {
        uf_fail("%s", lua_tostring(L, -1));
        goto out;
    }
    if (lua_pcall(L, 0, 1, errfn) != LUA_OK) {
        uf_fail("%s", lua_tostring(L, -1));
        goto out;
    }
    /* a file that returns a value is a module of other recipes (tiny_world.lua, grid.lua) */
    lua_pushboolean(L, !lua_isnil(L, -1));
    lua_setfield(L, uf_idx, "_module");
    lua_pop(L, 1);
    lua_getfield(L, uf_idx, "_plan_json");
    if (lua_pcall(L, 0, 1, errfn) != LUA_OK) {
        uf_fail("%s", lua_tostring(L, -1));
        goto out;
    }
    result = uf_strdup(lua_tostring(L, -1));
out:
    lua_close(L);
    free(dir);
    return result;
}

cJSON *uf_recipe_load(const char *path, int nsets, char **sets) {
    char *text = uf_recipe_plan_json(path, nsets, sets);
    if (!text) return NULL;
    cJSON *plan = cJSON_Parse(text);
    free(text);
    if (!plan) uf_fail("internal error: the recipe library produced invalid JSON for %s", path);
    return plan;
}
