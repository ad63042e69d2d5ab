/* recipe.h: runs a Lua recipe with the embedded recipe library (lua/unforget) and returns the
 * plan it declared as JSON text (stages and runs, every key validated and defaulted by the
 * library). Errors carry the recipe's file:line (a bad key names the valid keys and the nearest
 * match). The C runtime executes the plan; this module only evaluates the recipe. */
#ifndef UF_RECIPE_H
#define UF_RECIPE_H

#include <cjson/cJSON.h>

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

#endif
