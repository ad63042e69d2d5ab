/* recipe.h: runs a Lua recipe with the embedded recipe library (lua/unforget) and returns the
 * plan it declared (stages and runs, every key validated and defaulted by the library), encoded
 * once by a C walk of the Lua tables into cJSON and parsed into typed structs (formats/plan.h). Errors carry the recipe's file:line (a bad key names the valid keys and the nearest
 * match). The C runtime executes the plan; this module only evaluates the recipe. */
#ifndef UF_RECIPE_H
#define UF_RECIPE_H

#include <cjson/cJSON.h>

#include "formats/plan.h"
/* Recipes are trusted code (like a Makefile): they may read files and run programs. With
 * uf_recipe_safe set (`--safe`, or UNFORGET_SAFE=1) the recipe runs without io, os (except time,
 * clock, date), debug, dofile/loadfile, bytecode and C modules, and `require` finds only modules
 * next to the recipe. Evaluation stops with an error after UNFORGET_RECIPE_TIMEOUT seconds
 * (default 60). A recipe that returns a value is a module (plan "module": true). */
extern int uf_recipe_safe;

/* sets: "key=value" strings from --set, readable in the recipe through uf.opt("key", default).
 * Returns the parsed plan (caller frees with cJSON_Delete) or NULL with uf_fail set. */
cJSON *uf_recipe_load(const char *path, int nsets, char **sets);
/* The plan as compact JSON text (malloc'd) or NULL with uf_fail set. */
char *uf_recipe_plan_json(const char *path, int nsets, char **sets);
/* The typed plan (uf_plan_free it). 0 or uf_fail. */
int uf_recipe_plan(const char *path, int nsets, char **sets, struct uf_plan *out);
/* The plan of one run with `method` at its recipe defaults, every dataset key of the method
 * (buffer, data) a uf.jsonl of buffer_path (kind harmful): `bench --method`. 0 or uf_fail. */
int uf_recipe_method_plan(const char *method, const char *buffer_path, struct uf_plan *out);

#endif
