/* methods/registry.c: the continual-learning methods by name (the names of lua/unforget's
 * uf.<method> constructors) and uf_methods_check, the composition rules. */
#include <stdio.h>
#include <string.h>

#include "methods/methods.h"

extern const struct uf_method_ops uf_method_ewc, uf_method_l2sp, uf_method_lwf, uf_method_er,
    uf_method_der, uf_method_derpp, uf_method_agem, uf_method_refresh, uf_method_magmax,
    uf_method_linear, uf_method_task_arith, uf_method_ties, uf_method_safeinstr,
    uf_method_safelora, uf_method_lisa, uf_method_safemerge;

const struct uf_method_ops *const uf_method_registry[] = {
    &uf_method_ewc, &uf_method_l2sp, &uf_method_lwf, &uf_method_er, &uf_method_der,
    &uf_method_derpp, &uf_method_agem, &uf_method_refresh, &uf_method_magmax, &uf_method_linear,
    &uf_method_task_arith, &uf_method_ties, &uf_method_safeinstr, &uf_method_safelora,
    &uf_method_lisa, &uf_method_safemerge, NULL,
};

const struct uf_method_ops *uf_method_find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; uf_method_registry[i]; i++)
        if (strcmp(uf_method_registry[i]->name, name) == 0) return uf_method_registry[i];
    return NULL;
}

static int is_one_of(const char *s, const char *const *set) {
    for (; *set; set++)
        if (strcmp(s, *set) == 0) return 1;
    return 0;
}

int uf_methods_check(const cJSON *methods_list, int lora, char *why, size_t n) {
    static const char *const final_weights[] = {"magmax", "linear", "task_arith", "ties", "safemerge", "safelora", NULL};
    static const char *const replay[] = {"er", "der", "derpp", NULL};
    if (!methods_list || cJSON_IsNull(methods_list)) return 0;
    if (!cJSON_IsArray(methods_list)) return snprintf(why, n, "methods must be a list"), -1;
    const char *finisher = NULL, *refresh_before = NULL;
    int k = 0, refresh_at = -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, methods_list) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(it, "type");
        if (!cJSON_IsString(t)) return snprintf(why, n, "method %d has no type", k + 1), -1;
        const char *name = t->valuestring;
        const struct uf_method_ops *ops = uf_method_find(name);
        if (!ops) return snprintf(why, n, "method %d: unknown method '%s'", k + 1, name), -1;
        const cJSON *o;
        int j = 0;
        cJSON_ArrayForEach(o, methods_list) {
            const cJSON *t2 = cJSON_GetObjectItemCaseSensitive(o, "type");
            if (j++ < k && cJSON_IsString(t2) && strcmp(t2->valuestring, name) == 0)
                return snprintf(why, n, "method '%s' is listed twice", name), -1;
        }
        if (strcmp(name, "safelora") == 0 && !lora)
            return snprintf(why, n, "safelora projects LoRA adapters: the run needs lora = uf.lora {...}"), -1;
        if (is_one_of(name, final_weights)) {
            if (finisher)
                return snprintf(why, n, "'%s' and '%s' both rewrite the final weights; keep one "
                                "(run them as separate runs to compare)", finisher, name), -1;
            finisher = name;
        }
        if (strcmp(name, "refresh") == 0) refresh_at = k;
        if (ops->extra && strcmp(name, "refresh") != 0 && refresh_at < 0) refresh_before = name;
        k++;
    }
    if (refresh_at >= 0) {
        cJSON_ArrayForEach(it, methods_list) {
            const char *name = cJSON_GetObjectItemCaseSensitive(it, "type")->valuestring;
            if (is_one_of(name, replay))
                return snprintf(why, n, "refresh already runs DER++ on its buffer; drop '%s' or use "
                                "derpp without refresh", name), -1;
        }
        if (refresh_before)
            return snprintf(why, n, "refresh recomputes the step's gradient: list it before '%s'",
                            refresh_before), -1;
    }
    return 0;
}
