/* test_methods_check_host.c: the composition rules of uf_methods_check (methods.h) and the
 * registry (every lua/unforget method name is found; unknown names are not), host only. */
#include <string.h>

#include "methods/methods.h"
#include "uf_test.h"

/* json: a list of method tables; their "type" (or NULL) into a plan's method list */
static int check_list(const char *json, int lora, char *why) {
    cJSON *l = cJSON_Parse(json);
    struct uf_plan_method m[16];
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, l) {
        memset(&m[n], 0, sizeof m[n]);
        const cJSON *t = cJSON_GetObjectItem(it, "type");
        m[n].type = cJSON_IsString(t) ? t->valuestring : NULL;
        m[n++].cfg = it;
    }
    int rc = uf_methods_check(m, n, lora, why, 256);
    cJSON_Delete(l);
    return rc;
}

static void test_rules(void) {
    char why[256];
    CHECK(check_list("[{\"type\":\"der\"},{\"type\":\"ewc\"},{\"type\":\"magmax\"}]", 0, why) == 0);
    CHECK(check_list("[]", 0, why) == 0);
    CHECK(uf_methods_check(NULL, 0, 0, why, sizeof why) == 0);
    CHECK(check_list("[{\"alpha\":1}]", 0, why) != 0 && strstr(why, "no type"));
    CHECK(check_list("[{\"type\":\"lisa\"},{\"type\":\"safeinstr\"},{\"type\":\"lwf\"}]", 0, why) == 0);
    CHECK(check_list("[{\"type\":\"safelora\"}]", 1, why) == 0);
    CHECK(check_list("[{\"type\":\"safelora\"}]", 0, why) != 0 && strstr(why, "LoRA"));
    CHECK(check_list("[{\"type\":\"magmax\"},{\"type\":\"ties\"}]", 0, why) != 0 && strstr(why, "magmax") &&
          strstr(why, "ties"));
    CHECK(check_list("[{\"type\":\"safelora\"},{\"type\":\"linear\"}]", 1, why) != 0);
    CHECK(check_list("[{\"type\":\"safemerge\"},{\"type\":\"task_arith\"}]", 0, why) != 0);
    CHECK(check_list("[{\"type\":\"refresh\"},{\"type\":\"der\"}]", 0, why) != 0 && strstr(why, "DER++"));
    CHECK(check_list("[{\"type\":\"er\"},{\"type\":\"refresh\"}]", 0, why) != 0);
    CHECK(check_list("[{\"type\":\"lwf\"},{\"type\":\"refresh\"},{\"type\":\"agem\"}]", 0, why) == 0);
    CHECK(check_list("[{\"type\":\"lisa\"},{\"type\":\"refresh\"}]", 0, why) == 0);
    CHECK(check_list("[{\"type\":\"safegrad\"}]", 0, why) == 0);
    CHECK(check_list("[{\"type\":\"ema\"}]", 1, why) == 0);
    CHECK(check_list("[{\"type\":\"der\"},{\"type\":\"safegrad\"},{\"type\":\"ema\"}]", 0, why) == 0);
    CHECK(check_list("[{\"type\":\"ema\"},{\"type\":\"linear\"}]", 0, why) != 0 && strstr(why, "ema"));
    CHECK(check_list("[{\"type\":\"tokensel\"}]", 0, why) == 0);
    CHECK(check_list("[{\"type\":\"tokensel\"},{\"type\":\"der\"}]", 0, why) == 0);
    CHECK(check_list("[{\"type\":\"tokensel\"},{\"type\":\"refresh\"}]", 1, why) == 0);
    CHECK(check_list("[{\"type\":\"nope\"}]", 0, why) != 0 && strstr(why, "nope"));
    CHECK(check_list("[{\"type\":\"der\"},{\"type\":\"der\"}]", 0, why) != 0 && strstr(why, "twice"));
    char small[8];
    struct uf_plan_method nope = {.type = "nope"};
    CHECK(uf_methods_check(&nope, 1, 0, small, sizeof small) != 0); /* a short buffer: truncated, not overrun */
    CHECK(strlen(small) == sizeof small - 1);
}

static void test_registry(void) {
    const char *names[] = {"ewc", "l2sp", "lwf", "er", "der", "derpp", "agem", "refresh", "magmax",
                           "linear", "task_arith", "ties", "safeinstr", "safelora", "lisa", "safemerge",
                           "safegrad", "ema", "tokensel"};
    for (size_t i = 0; i < UF_ARRAY_LEN(names); i++) {
        const struct uf_method_ops *o = uf_method_find(names[i]);
        CHECK_MSG(o && strcmp(o->name, names[i]) == 0, "%s", names[i]);
    }
    /* every entry (a new method's too) is found by its own, non-empty, unique name */
    for (int i = 0; uf_method_registry[i]; i++) {
        const struct uf_method_ops *o = uf_method_registry[i];
        CHECK_MSG(o->name && o->name[0] && uf_method_find(o->name) == o, "registry entry %d", i);
    }
    CHECK(uf_method_find("sft") == NULL && uf_method_find(NULL) == NULL && uf_method_find("") == NULL);
}

/* the rules follow the traits: any two rewrites_weights methods are refused, a needs_lora one
 * without LoRA, a replays one beside a recomputes_grad one; the merges need theta_0 and f32 */
static void test_traits(void) {
    char why[256], js[256];
    for (int i = 0; uf_method_registry[i]; i++) {
        const struct uf_method_ops *a = uf_method_registry[i];
        /* the merges edit the f32 base; EMA rewrites the trainable vector (LoRA adapters too) */
        if (a->rewrites_weights)
            CHECK_MSG(a->finish && (a->needs_f32_base || strcmp(a->name, "ema") == 0), "%s", a->name);
        snprintf(js, sizeof js, "[{\"type\":\"%s\"}]", a->name);
        CHECK_MSG((check_list(js, 0, why) != 0) == (a->needs_lora != 0), "%s", a->name);
        for (int j = 0; uf_method_registry[j]; j++) {
            const struct uf_method_ops *b = uf_method_registry[j];
            if (i == j) continue;
            snprintf(js, sizeof js, "[{\"type\":\"%s\"},{\"type\":\"%s\"}]", a->name, b->name);
            int refused = check_list(js, 1, why) != 0;
            int want = (a->rewrites_weights && b->rewrites_weights) ||
                       (a->recomputes_grad && (b->replays || b->extra)) ||
                       (b->recomputes_grad && (a->replays || a->extra));
            CHECK_MSG(refused == want, "%s + %s: %s", a->name, b->name, refused ? why : "accepted");
        }
    }
    /* the merges, SafeLoRA and EMA rewrite the final weights, the training-time methods do not */
    const char *rewrite[] = {"magmax", "linear", "task_arith", "ties", "safelora", "safemerge", "ema"};
    const char *keep[] = {"ewc", "l2sp", "lwf", "er", "der", "derpp", "agem", "refresh", "safeinstr", "lisa",
                          "safegrad", "tokensel"};
    for (size_t i = 0; i < UF_ARRAY_LEN(rewrite); i++)
        CHECK_MSG(uf_method_find(rewrite[i])->rewrites_weights, "%s", rewrite[i]);
    for (size_t i = 0; i < UF_ARRAY_LEN(keep); i++)
        CHECK_MSG(!uf_method_find(keep[i])->rewrites_weights, "%s", keep[i]);
    CHECK(uf_method_find("magmax")->needs_theta0 && !uf_method_find("linear")->needs_theta0);
    CHECK(uf_method_find("der")->replays && !uf_method_find("agem")->replays);
    CHECK(uf_method_find("ema")->rewrites_weights && !uf_method_find("ema")->needs_f32_base);
    CHECK(uf_method_find("safegrad")->uses_teacher && uf_method_find("safegrad")->project);
    CHECK(uf_method_find("tokensel")->batch && uf_method_find("tokensel")->uses_anchor == UF_ANCHOR_ALWAYS);
}

int main(void) {
    UF_RUN(test_rules);
    UF_RUN(test_traits);
    UF_RUN(test_registry);
    return uf_test_summary();
}
