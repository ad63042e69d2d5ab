/* recipe.h: runs a Lua recipe with the embedded recipe library (lua/unforget) and returns the
 * plan it declared (stages and runs, every key validated and defaulted by the library), encoded
 * once by a C walk of the Lua tables into cJSON and parsed into typed structs (formats/plan.h). Errors carry the recipe's file:line (a bad key names the valid keys and the nearest
 * match). The C runtime executes the plan; this module only evaluates the recipe. */
#ifndef UF_RECIPE_H
#define UF_RECIPE_H

#include <cjson/cJSON.h>

#include "formats/plan.h"

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
