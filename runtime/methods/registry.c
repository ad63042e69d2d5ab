/* methods/registry.c: the continual-learning methods by name (the names of lua/unforget's
 * uf.<method> constructors) and uf_methods_check, the composition rules, read from each method's
 * traits (struct uf_method_ops). Adding a method adds one line to UF_METHODS. */
#include <stdio.h>
#include <string.h>

#include "methods/methods.h"

/* X(name): runtime/methods/<name>.c defines const struct uf_method_ops uf_method_<name> */
#define UF_METHODS(X) \
    X(ewc)            \
    X(l2sp)           \
    X(lwf)            \
    X(er)             \
    X(der)            \
    X(derpp)          \
    X(agem)           \
    X(refresh)        \
    X(magmax)         \
    X(linear)         \
    X(task_arith)     \
    X(ties)           \
    X(safeinstr)      \
    X(safelora)       \
    X(lisa)           \
    X(safemerge)

#define UF_METHOD_DECL(name) extern const struct uf_method_ops uf_method_##name;
#define UF_METHOD_ENTRY(name) &uf_method_##name,
UF_METHODS(UF_METHOD_DECL)
const struct uf_method_ops *const uf_method_registry[] = {UF_METHODS(UF_METHOD_ENTRY) NULL};

const struct uf_method_ops *uf_method_find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; uf_method_registry[i]; i++)
        if (strcmp(uf_method_registry[i]->name, name) == 0) return uf_method_registry[i];
    return NULL;
}

static const char *type_of(const cJSON *m) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(m, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

int uf_methods_check(const cJSON *methods_list, int lora, char *why, size_t n) {
    if (!methods_list || cJSON_IsNull(methods_list)) return 0;
    if (!cJSON_IsArray(methods_list)) return snprintf(why, n, "methods must be a list"), -1;
    const char *finisher = NULL, *extra_before = NULL, *replayer = NULL, *recomputer = NULL;
    int k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, methods_list) {
        const char *name = type_of(it);
        if (!name) return snprintf(why, n, "method %d has no type", k + 1), -1;
        const struct uf_method_ops *ops = uf_method_find(name);
        if (!ops) return snprintf(why, n, "method %d: unknown method '%s'", k + 1, name), -1;
        const cJSON *o;
        int j = 0;
        cJSON_ArrayForEach(o, methods_list) {
            const char *t2 = type_of(o);
            if (j++ < k && t2 && strcmp(t2, name) == 0)
                return snprintf(why, n, "method '%s' is listed twice", name), -1;
        }
        if (ops->needs_lora && !lora)
            return snprintf(why, n, "%s projects LoRA adapters: the run needs lora = uf.lora {...}", name), -1;
        if (ops->rewrites_weights) {
            if (finisher)
                return snprintf(why, n, "'%s' and '%s' both rewrite the final weights; keep one "
                                "(run them as separate runs to compare)", finisher, name), -1;
            finisher = name;
        }
        if (ops->replays && !replayer) replayer = name;
        if (ops->recomputes_grad && !recomputer) recomputer = name;
        if (ops->extra && !ops->recomputes_grad && !recomputer && !extra_before) extra_before = name;
        k++;
    }
    if (recomputer) {
        if (replayer)
            return snprintf(why, n, "%s already runs DER++ on its buffer; drop '%s' or use "
                            "derpp without %s", recomputer, replayer, recomputer), -1;
        if (extra_before)
            return snprintf(why, n, "%s recomputes the step's gradient: list it before '%s'",
                            recomputer, extra_before), -1;
    }
    return 0;
}
