/* methods/registry.c: the continual-learning methods by name (the names of lua/unforget's
 * uf.<method> constructors) and uf_methods_check, the composition rules, read from each method's
 * traits (struct uf_method_ops). Adding a method adds one line to UF_METHODS. */
#include <stdio.h>
#include <string.h>

#include "methods/methods.h"
#include "core/util.h"
#include "model/memplan.h"

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
    X(safemerge)      \
    X(safegrad)       \
    X(ema)            \
    X(tokensel)       \
    /* a new method: one line X(name) \ above this one */

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

int uf_methods_check(const struct uf_plan_method *methods, int n_methods, int lora, char *why, size_t n) {
    const char *finisher = NULL, *extra_before = NULL, *replayer = NULL, *recomputer = NULL;
    for (int k = 0; k < n_methods; k++) {
        const char *name = methods[k].type;
        if (!name) return snprintf(why, n, "method %d has no type", k + 1), -1;
        const struct uf_method_ops *ops = uf_method_find(name);
        if (!ops) return snprintf(why, n, "method %d: unknown method '%s'", k + 1, name), -1;
        for (int j = 0; j < k; j++)
            if (methods[j].type && strcmp(methods[j].type, name) == 0)
                return snprintf(why, n, "method '%s' is listed twice", name), -1;
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

int uf_methods_memplan(const struct uf_plan_method *methods, int n_methods, struct uf_memplan_in *in) {
    in->method_teacher = in->method_anchor = 0;
    in->n_method_state = 0;
    for (int k = 0; k < n_methods; k++) {
        const struct uf_method_ops *ops = uf_method_find(methods[k].type);
        if (!ops) return uf_fail("memory plan: unknown method '%s'", methods[k].type);
        in->method_teacher |= ops->uses_teacher;
        if (ops->uses_anchor == UF_ANCHOR_ALWAYS || (ops->uses_anchor == UF_ANCHOR_FULL_FT && in->lora_rank <= 0))
            in->method_anchor = 1;
        size_t b = ops->state_bytes ? ops->state_bytes(in, methods[k].cfg) : 0;
        if (b == 0) continue;
        if (in->n_method_state == (int)UF_ARRAY_LEN(in->method_state))
            return uf_fail("memory plan: more than %d methods with state", (int)UF_ARRAY_LEN(in->method_state));
        in->method_state[in->n_method_state].name = ops->state_name ? ops->state_name : ops->name;
        in->method_state[in->n_method_state++].bytes = b;
    }
    return 0;
}
