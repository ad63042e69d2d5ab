/* recipe.c: see recipe.h. */
#include "recipe.h"

#include <lauxlib.h>
#include <math.h>
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

/* ---- the plan: one C walk of the Lua tables into cJSON -------------------------------------- */
/* Tables with list items (or empty) become arrays, others objects with their string keys in
 * sorted order (stable content hashes); inside a stage or run, a stage is a reference
 * {"_kind": "stage", "name": ...}. `path` names the value in errors. */
static cJSON *walk(lua_State *L, int idx, int full, const char *path, int depth);

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static cJSON *walk_object(lua_State *L, int idx, const char *path, int depth) {
    size_t n = 0, cap = 16;
    const char **keys = uf_malloc(cap * sizeof *keys);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            uf_fail("plan: %s: cannot encode a table with a %s key beside string keys", path,
                    luaL_typename(L, -1));
            lua_pop(L, 1);
            free(keys);
            return NULL;
        }
        if (n == cap) keys = uf_realloc(keys, (cap *= 2) * sizeof *keys);
        keys[n++] = lua_tostring(L, -1); /* the table keeps the string alive */
    }
    qsort(keys, n, sizeof *keys, cmp_str);
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < n; i++) {
        char *sub = uf_sprintf("%s.%s", path, keys[i]);
        lua_getfield(L, idx, keys[i]);
        cJSON *v = walk(L, lua_gettop(L), 0, sub, depth + 1);
        lua_pop(L, 1);
        free(sub);
        if (!v) {
            cJSON_Delete(o);
            free(keys);
            return NULL;
        }
        cJSON_AddItemToObject(o, keys[i], v);
    }
    free(keys);
    return o;
}

static cJSON *walk(lua_State *L, int idx, int full, const char *path, int depth) {
    if (depth > 64) return uf_fail("plan: %s: nested too deeply (a cycle?)", path), NULL;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return cJSON_CreateNull();
    case LUA_TBOOLEAN: return cJSON_CreateBool(lua_toboolean(L, idx));
    case LUA_TNUMBER: {
        if (lua_isinteger(L, idx)) return cJSON_CreateNumber((double)lua_tointeger(L, idx));
        double v = lua_tonumber(L, idx);
        if (!isfinite(v)) return uf_fail("plan: %s: cannot encode %g", path, v), NULL;
        return cJSON_CreateNumber(v);
    }
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (strlen(s) != len) return uf_fail("plan: %s: a string with a NUL byte", path), NULL;
        return cJSON_CreateString(s);
    }
    case LUA_TTABLE: break;
    default: return uf_fail("plan: %s: cannot encode a %s", path, luaL_typename(L, idx)), NULL;
    }
    if (!full) {
        lua_getfield(L, idx, "_kind");
        int is_stage = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "stage") == 0;
        lua_pop(L, 1);
        if (is_stage) {
            lua_getfield(L, idx, "name");
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "_kind", "stage");
            cJSON_AddStringToObject(o, "name", lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
            lua_pop(L, 1);
            return o;
        }
    }
    lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
    lua_pushnil(L);
    int empty = !lua_next(L, idx);
    if (!empty) lua_pop(L, 2);
    if (len == 0 && !empty) return walk_object(L, idx, path, depth);
    cJSON *a = cJSON_CreateArray();
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        count++;
        lua_pop(L, 1);
    }
    if (count != len) {
        cJSON_Delete(a);
        return uf_fail("plan: %s: cannot encode a table that mixes list items and keys", path), NULL;
    }
    for (lua_Integer i = 1; i <= len; i++) {
        char *sub = uf_sprintf("%s[%lld]", path, (long long)i);
        lua_rawgeti(L, idx, i);
        cJSON *v = walk(L, lua_gettop(L), 0, sub, depth + 1);
        lua_pop(L, 1);
        free(sub);
        if (!v) {
            cJSON_Delete(a);
            return NULL;
        }
        cJSON_AddItemToArray(a, v);
    }
    return a;
}

static int traceback(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    lua_pushstring(L, msg ? msg : "(error object is not a string)");
    return 1;
}

/* Evaluates a recipe (path, or chunk when not NULL: Lua source run with arg1, arg2 as its `...`)
 * with the library and --set values, and encodes the declared plan. NULL with uf_fail. */
static cJSON *eval_plan(const char *path, const char *chunk, const char *arg1, const char *arg2,
                        int nsets, char **sets) {
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
    const char *slash = path ? strrchr(path, '/') : NULL;
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

    cJSON *result = NULL;
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
    int uf_idx = lua_gettop(L), is_module = 0;
    const char *safe_env = getenv("UNFORGET_SAFE");
    if (uf_recipe_safe || (safe_env && strcmp(safe_env, "1") == 0)) sandbox(L, dir);

    if (chunk) {
        if (luaL_loadbuffer(L, chunk, strlen(chunk), "=[unforget]") != LUA_OK) {
            uf_fail("%s", lua_tostring(L, -1));
            goto out;
        }
        lua_pushstring(L, arg1 ? arg1 : "");
        lua_pushstring(L, arg2 ? arg2 : "");
        if (lua_pcall(L, 2, 0, errfn) != LUA_OK) {
            uf_fail("%s", lua_tostring(L, -1));
            goto out;
        }
    } else {
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
        is_module = !lua_isnil(L, -1);
        lua_pop(L, 1);
    }
    /* uf._plan_final(): the --set check, then the plan table { stages = {...}, runs = {...} } */
    lua_getfield(L, uf_idx, "_plan_final");
    if (lua_pcall(L, 0, 1, errfn) != LUA_OK) {
        uf_fail("%s", lua_tostring(L, -1));
        goto out;
    }
    int plan_idx = lua_gettop(L);
    result = cJSON_CreateObject();
    const char *groups[] = {"stages", "runs"};
    for (int g = 0; g < 2; g++) {
        cJSON *list = cJSON_AddArrayToObject(result, groups[g]);
        lua_getfield(L, plan_idx, groups[g]);
        int list_idx = lua_gettop(L);
        lua_Integer len = (lua_Integer)lua_rawlen(L, list_idx);
        for (lua_Integer i = 1; i <= len; i++) {
            lua_rawgeti(L, list_idx, i);
            lua_getfield(L, -1, "name");
            char *where = uf_sprintf("%s %s", g ? "run" : "stage",
                                     lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
            lua_pop(L, 1);
            cJSON *node = walk(L, lua_gettop(L), 1, where, 0);
            free(where);
            lua_pop(L, 1);
            if (!node) {
                cJSON_Delete(result);
                result = NULL;
                goto out;
            }
            cJSON_AddItemToArray(list, node);
        }
        lua_pop(L, 1);
    }
    lua_getfield(L, plan_idx, "slurm"); /* uf.slurm { ... }, when given */
    if (!lua_isnil(L, -1)) {
        cJSON *sl = walk(L, lua_gettop(L), 0, "slurm", 0);
        if (!sl) {
            cJSON_Delete(result);
            result = NULL;
            goto out;
        }
        cJSON_AddItemToObject(result, "slurm", sl);
    }
    lua_getfield(L, plan_idx, "tunes"); /* uf.tune { ... } studies, when declared */
    if (!lua_isnil(L, -1)) {
        cJSON *tu = walk(L, lua_gettop(L), 0, "tunes", 0);
        if (!tu) {
            cJSON_Delete(result);
            result = NULL;
            goto out;
        }
        cJSON_AddItemToObject(result, "tunes", tu);
    }
    lua_pop(L, 1);
    if (is_module) cJSON_AddTrueToObject(result, "module");
out:
    lua_close(L);
    free(dir);
    return result;
}

cJSON *uf_recipe_load(const char *path, int nsets, char **sets) {
    return eval_plan(path, NULL, NULL, NULL, nsets, sets);
}

char *uf_recipe_plan_json(const char *path, int nsets, char **sets) {
    cJSON *plan = uf_recipe_load(path, nsets, sets);
    if (!plan) return NULL;
    char *text = cJSON_PrintUnformatted(plan);
    cJSON_Delete(plan);
    return text;
}

int uf_recipe_plan(const char *path, int nsets, char **sets, struct uf_plan *out) {
    cJSON *json = uf_recipe_load(path, nsets, sets);
    if (!json) return -1;
    return uf_plan_parse(json, out) ? uf_fail_prefix("%s", path) : 0;
}

/* bench --method: one run with the method at its schema defaults, every dataset key of the
 * method given the buffer file */
static const char *method_chunk =
    "local name, path = ...\n"
    "local uf = require 'unforget'\n"
    "if not uf._schemas[name] or not uf[name] then error('unknown method ' .. name, 0) end\n"
    "local ds = uf.jsonl { path = path, kind = 'harmful' }\n"
    "local t = {}\n"
    "for k, spec in pairs(uf._schemas[name]) do if spec[1] == 'kind:dataset' then t[k] = ds end end\n"
    "uf.run { name = 'bench', model = uf.model.new {}, data = ds, methods = { uf[name](t) } }\n";

int uf_recipe_method_plan(const char *method, const char *buffer_path, struct uf_plan *out) {
    cJSON *json = eval_plan(NULL, method_chunk, method, buffer_path, 0, NULL);
    if (!json) return -1;
    return uf_plan_parse(json, out);
}
