/* recipe.h: runs a Lua recipe with the embedded recipe library (lua/unforget) and returns the
 * plan it declared as JSON text (stages and runs, every key validated and defaulted by the
 * library). Errors carry the recipe's file:line (a bad key names the valid keys and the nearest
 * match). The C runtime executes the plan; this module only evaluates the recipe. */
#ifndef UF_RECIPE_H
#define UF_RECIPE_H

#include <cjson/cJSON.h>

/* sets: "key=value" strings from --set, readable in the recipe through uf.opt("key", default).
 * Returns the parsed plan (caller frees with cJSON_Delete) or NULL with uf_fail set. */
cJSON *uf_recipe_load(const char *path, int nsets, char **sets);
/* The plan as compact JSON text (malloc'd) or NULL with uf_fail set. */
char *uf_recipe_plan_json(const char *path, int nsets, char **sets);

#endif
