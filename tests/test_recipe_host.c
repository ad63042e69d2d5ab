/* test_recipe_host.c: the Lua recipe layer: a valid recipe gives a plan with defaults filled; a
 * typo is reported at its recipe line with the nearest valid key; wrong types, missing required
 * keys, bad --set values and duplicate names are reported clearly; a stage's derta = { ... } is
 * defaulted, parsed into the typed plan, refused on a run, and absent from a stage without it. */
#include <stdlib.h>
#include <unistd.h>

#include "formats/plan.h"
#include "recipe.h"
#include "uf_test.h"
#include "core/util.h"

static char *write_recipe(const char *text) {
    char *path = uf_strdup("/tmp/uf_recipe_XXXXXX.lua");
    int fd = mkstemps(path, 4);
    if (fd < 0) return NULL;
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) { close(fd); return NULL; }
    close(fd);
    return path;
}

/* Loads `text` as a recipe; returns the plan JSON or NULL (then uf_error() has the message). */
static char *load(const char *text, int nsets, char **sets, char **path_out) {
    char *path = write_recipe(text);
    char *json = uf_recipe_plan_json(path, nsets, sets);
    if (path_out) *path_out = path;
    else { unlink(path); free(path); }
    return json;
}

static const char *good =
    "local uf = require 'unforget'\n"
    "local world = uf.world { seed = 3 }\n"
    "local a = uf.stage 'aligned' { model = uf.model.new { d_model = 32, layers = 1, heads = 2 },\n"
    "  data = world.alignment, optim = uf.adamw { lr = 1e-3 } }\n"
    "uf.run { name = 'der', from = a, data = uf.mix { task = world.task:take(10), poison = world.poison,\n"
    "  p = uf.opt('p', 0.1), n = 10 }, methods = { uf.der { buffer = world.safety:sample(5, 2) } } }\n";

static void test_valid_plan(void) {
    char *json = load(good, 0, NULL, NULL);
    CHECK_MSG(json != NULL, "%s", uf_error());
    if (!json) return;
    cJSON *plan = cJSON_Parse(json);
    CHECK(plan != NULL);
    cJSON *runs = cJSON_GetObjectItem(plan, "runs");
    CHECK_EQ_INT(cJSON_GetArraySize(runs), 1);
    cJSON *run = cJSON_GetArrayItem(runs, 0);
    CHECK_STR(cJSON_GetObjectItem(run, "name")->valuestring, "der");
    cJSON *mix = cJSON_GetObjectItem(run, "data");
    CHECK_NEAR(cJSON_GetObjectItem(mix, "p")->valuedouble, 0.1, 1e-12);
    cJSON *der = cJSON_GetArrayItem(cJSON_GetObjectItem(run, "methods"), 0);
    CHECK_STR(cJSON_GetObjectItem(der, "type")->valuestring, "der");
    CHECK_STR(cJSON_GetObjectItem(der, "reduction")->valuestring, "sum"); /* default filled */
    cJSON *from = cJSON_GetObjectItem(run, "from");
    CHECK_STR(cJSON_GetObjectItem(from, "name")->valuestring, "aligned");
    cJSON *optim = cJSON_GetObjectItem(run, "optim"); /* default optimizer */
    CHECK_NEAR(cJSON_GetObjectItem(optim, "lr")->valuedouble, 3e-4, 1e-12);
    cJSON *stage = cJSON_GetArrayItem(cJSON_GetObjectItem(plan, "stages"), 0);
    CHECK_NEAR(cJSON_GetObjectItem(cJSON_GetObjectItem(stage, "optim"), "lr")->valuedouble, 1e-3, 1e-12);
    cJSON_Delete(plan);
    free(json);
}

static void test_set_override(void) {
    char *sets[] = {"p=0.25"};
    char *json = load(good, 1, sets, NULL);
    CHECK(json && strstr(json, "\"p\":0.25") != NULL);
    free(json);
    char *bad[] = {"p=abc"};
    CHECK(load(good, 1, bad, NULL) == NULL);
    CHECK_MSG(strstr(uf_error(), "expected a number") != NULL, "%s", uf_error());
    char *unused[] = {"lr=1"};
    CHECK(load(good, 1, unused, NULL) == NULL);
    CHECK_MSG(strstr(uf_error(), "never reads 'lr'") != NULL, "%s", uf_error());
}

static void test_typo_reported_at_line(void) {
    char *path = NULL;
    char *json = load("local uf = require 'unforget'\n"
                      "local w = uf.world {}\n"
                      "uf.run { name = 'x', model = uf.model.new {},\n"
                      "  data = w.task, optim = uf.adamw { lr = 1e-3, epoch = 2 } }\n",
                      0, NULL, &path);
    CHECK(json == NULL);
    char want[256];
    snprintf(want, sizeof want, "%s:4: adamw: unknown key 'epoch' (did you mean 'epochs'?)", path);
    CHECK_MSG(strstr(uf_error(), want) != NULL, "got: %s\nwant: %s", uf_error(), want);
    CHECK(strstr(uf_error(), "valid keys: batch, beta1") != NULL);
    unlink(path);
    free(path);
}

static void test_wrong_type_and_required(void) {
    CHECK(load("local uf = require 'unforget'\nuf.adamw { lr = 'fast' }\n", 0, NULL, NULL) == NULL);
    CHECK_MSG(strstr(uf_error(), ":2: adamw: 'lr' must be a number, got \"fast\"") != NULL, "%s", uf_error());
    CHECK(load("local uf = require 'unforget'\nlocal w = uf.world {}\n\nuf.der { alpha = 1 }\n", 0, NULL, NULL) == NULL);
    CHECK_MSG(strstr(uf_error(), ":4: der: 'buffer' is required") != NULL, "%s", uf_error());
    CHECK(load("local uf = require 'unforget'\nuf.der { buffer = 3 }\n", 0, NULL, NULL) == NULL);
    CHECK_MSG(strstr(uf_error(), "'buffer' must be a dataset") != NULL, "%s", uf_error());
    CHECK(load("local uf = require 'unforget'\nlocal w = uf.world {}\nuf.mix { task = w.task, p = 1.5, poison = w.poison }\n", 0, NULL, NULL) == NULL);
    CHECK_MSG(strstr(uf_error(), ":3: mix: p must be in [0, 1]") != NULL, "%s", uf_error());
    CHECK(load("local uf = require 'unforget'\nlocal w = uf.world {}\n"
               "uf.run { name = 'a', model = uf.model.new {}, data = w.task }\n"
               "uf.run { name = 'a', model = uf.model.new {}, data = w.task }\n", 0, NULL, NULL) == NULL);
    CHECK_MSG(strstr(uf_error(), ":4: run name 'a' is used twice") != NULL, "%s", uf_error());
    CHECK(load("local uf = require 'unforget'\nuf.model.new { family = 'gpt2' }\n", 0, NULL, NULL) == NULL);
    CHECK_MSG(strstr(uf_error(), "one of llama, mistral, gemma, llama3") != NULL, "%s", uf_error());
}

static void test_lua_errors(void) {
    CHECK(load("local uf = require 'unforget'\nuf.run {\n", 0, NULL, NULL) == NULL); /* syntax */
    CHECK(strstr(uf_error(), ":3:") != NULL || strstr(uf_error(), "expected") != NULL);
    CHECK(uf_recipe_plan_json("/nonexistent/recipe.lua", 0, NULL) == NULL);
    CHECK(strstr(uf_error(), "does not exist") != NULL);
}

/* A recipe can require a Lua module that sits next to it. */
static void test_require_sibling(void) {
    char dir[] = "/tmp/uf_recipe_dir_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *mod = uf_sprintf("%s/shared_bits.lua", dir), *rec = uf_sprintf("%s/main.lua", dir);
    const char *m = "local uf = require 'unforget'\nreturn { lr = 0.125 }\n";
    const char *r = "local uf = require 'unforget'\nlocal s = require 'shared_bits'\n"
                    "local w = uf.world {}\nuf.run { name = 'x', model = uf.model.new {}, data = w.task,\n"
                    "  optim = uf.adamw { lr = s.lr } }\n";
    CHECK(uf_file_write_atomic(mod, m, strlen(m)) == 0);
    CHECK(uf_file_write_atomic(rec, r, strlen(r)) == 0);
    char *json = uf_recipe_plan_json(rec, 0, NULL);
    CHECK_MSG(json && strstr(json, "\"lr\":0.125"), "%s", json ? json : uf_error());
    free(json);
    unlink(mod), unlink(rec), rmdir(dir);
    free(mod), free(rec);
}

/* derta = { ... }: an option of uf.stage only; defaults filled; the typed plan holds it */
static void test_derta_stage(void) {
    const char *head = "local uf = require 'unforget'\nlocal w = uf.world {}\n"
                       "local a = uf.stage 'al' { model = uf.model.new { d_model = 32, layers = 1, heads = 2 },\n"
                       "  data = w.alignment, ";
    char *r = uf_sprintf("%sderta = { rto_weight = 0.5, responses = w.poison } }\n"
                         "uf.run { name = 'r', from = a, data = w.task }\n", head);
    char *json = load(r, 0, NULL, NULL);
    CHECK_MSG(json != NULL, "%s", uf_error());
    free(r);
    if (json) {
        struct uf_plan p;
        CHECK_MSG(uf_plan_parse(cJSON_Parse(json), &p) == 0, "%s", uf_error());
        const struct uf_plan_derta *d = p.stages[0].derta;
        CHECK(d != NULL && p.runs[0].derta == NULL);
        if (d) {
            CHECK(d->prefix == 1 && d->rto == 1 && d->seed == 1); /* defaults */
            CHECK_NEAR(d->rto_weight, 0.5, 0);
            CHECK(d->responses && strcmp(d->responses->split, "poison") == 0);
        }
        uf_plan_free(&p);
        free(json);
    }
    /* a stage without derta: no derta key (its content hash is that of before) */
    r = uf_sprintf("%soptim = uf.adamw {} }\nuf.run { name = 'r', from = a, data = w.task }\n", head);
    json = load(r, 0, NULL, NULL);
    CHECK(json && strstr(json, "derta") == NULL);
    free(json);
    free(r);
    struct { const char *tail, *want; } bad[] = {
        {"derta = { rto_wieght = 2 } }\n", "derta: unknown key 'rto_wieght' (did you mean 'rto_weight'?)"},
        {"derta = { rto_weight = -1 } }\n", "'rto_weight' must be >= 0"},
        {"derta = { prefix = false, rto = false } }\n", "prefix and rto are both false"},
        {"derta = w.poison }\n", "expected a table of options"},
        {"derta = { } }\nuf.run { name = 'r', from = a, data = w.task, derta = {} }\n",
         "run: derta is an option of uf.stage"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = uf_sprintf("%s%s", head, bad[i].tail);
        json = load(r, 0, NULL, NULL);
        CHECK_MSG(json == NULL && strstr(uf_error(), bad[i].want), "case %zu: %s", i, json ? json : uf_error());
        free(json);
        free(r);
    }
}

int main(void) {
    UF_RUN(test_valid_plan);
    UF_RUN(test_set_override);
    UF_RUN(test_typo_reported_at_line);
    UF_RUN(test_wrong_type_and_required);
    UF_RUN(test_lua_errors);
    UF_RUN(test_require_sibling);
    UF_RUN(test_derta_stage);
    return uf_test_summary();
}
