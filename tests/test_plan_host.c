/* test_plan_host.c: the typed plan (formats/plan.h) from a recipe through the one encoder (a C walk
 * of the Lua tables, recipe.c): the defaults the structs hold are the Lua schema's; stage
 * references, mixtures, ops, methods' datasets, evaluations and tags arrive typed; names with
 * quotes and newlines survive; a key the library always sets but the JSON lacks is an error
 * naming it; values the encoder cannot represent are errors naming the key. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/plan.h"
#include "recipe.h"
#include "uf_test.h"
#include "core/util.h"

static int plan_of(const char *text, struct uf_plan *p) {
    char *path = uf_strdup("/tmp/uf_plan_XXXXXX.lua");
    int fd = mkstemps(path, 4);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    int rc = uf_recipe_plan(path, 0, NULL, p);
    unlink(path);
    free(path);
    return rc;
}

static void test_typed(void) {
    struct uf_plan p;
    int rc = plan_of("local uf = require 'unforget'\n"
                     "local world = uf.world { seed = 3, task_rows = 50 }\n"
                     "local a = uf.stage 'al\"ign\\ned' { model = uf.model.new { d_model = 32, layers = 1, heads = 2 },\n"
                     "  data = world.alignment, tokenizer = uf.tokenizer.train { corpus = world.corpus } }\n"
                     "uf.run { name = 'r1', from = a, lora = uf.lora {},\n"
                     "  data = uf.mix { task = world.task:take(10), poison = world.poison, p = 0.25, n = 12 },\n"
                     "  methods = { uf.der { buffer = world.safety:sample(5, 2) }, uf.ewc { data = world.safety } },\n"
                     "  eval = { uf.asr(world.harmful_eval, { n = 3, keywords = { 'no', 'sorry' } }) },\n"
                     "  tags = { method = 'x', p = 0.5 } }\n",
                     &p);
    CHECK_MSG(rc == 0, "%s", uf_error());
    if (rc) return;
    CHECK_EQ_INT(p.n_stages, 1);
    CHECK_EQ_INT(p.n_runs, 1);
    const struct uf_plan_node *s = &p.stages[0], *r = &p.runs[0];
    CHECK(s->is_stage && strcmp(s->name, "al\"ign\ned") == 0);
    CHECK(r->from && strcmp(r->from, s->name) == 0 && uf_plan_stage(&p, r->from) == s);
    /* the schema's defaults (lua/unforget/init.lua), not C's */
    CHECK(s->model && s->model->type == UF_PLAN_MODEL_NEW && s->model->d_model == 32 &&
          strcmp(s->model->family, "llama") == 0 && s->model->max_seq == 256 && s->model->d_ff == 0);
    CHECK(s->tokenizer && s->tokenizer->train && s->tokenizer->vocab == 2048 &&
          s->tokenizer->corpus.source == UF_PLAN_WORLD && strcmp(s->tokenizer->corpus.split, "corpus") == 0);
    CHECK(s->data && !s->data->is_mixture && s->data->ds.world.seed == 3 &&
          s->data->ds.world.task_rows == 50 && s->data->ds.world.eval_rows == 400);
    const struct uf_plan_optim *o = &r->optim;
    CHECK(o->lr == 3e-4f && o->batch == 8 && o->micro_batch == 0 && o->max_len == 256 &&
          strcmp(o->schedule, "cosine") == 0 && o->clip == 1.0f && o->epochs == 1 && !o->bf16 &&
          !o->checkpointing && o->seed == 1);
    CHECK(r->lora && r->lora->r == 8 && r->lora->alpha == 16 && strcmp(r->lora->targets, "all") == 0);
    CHECK(strcmp(r->template_name, "plain") == 0 && !r->model && !r->tokenizer && !r->base);
    const struct uf_plan_data *d = r->data;
    CHECK(d && d->is_mixture && d->p == 0.25 && d->n == 12 && d->seed == 1 && d->poison);
    CHECK(d->task.n_ops == 1 && d->task.ops[0].kind == UF_PLAN_TAKE && d->task.ops[0].n == 10);
    CHECK_EQ_INT(r->n_methods, 2);
    const struct uf_plan_method *m = &r->methods[0];
    CHECK(strcmp(m->type, "der") == 0 && m->n_datasets == 1 && strcmp(m->dataset_keys[0], "buffer") == 0);
    CHECK(m->datasets[0].n_ops == 1 && m->datasets[0].ops[0].kind == UF_PLAN_SAMPLE &&
          m->datasets[0].ops[0].n == 5 && m->datasets[0].ops[0].seed == 2);
    CHECK(cJSON_GetObjectItem(m->cfg, "alpha")->valuedouble == 0.1); /* der's schema default */
    CHECK(strcmp(r->methods[1].type, "ewc") == 0 && r->methods[1].n_datasets == 1);
    CHECK_EQ_INT(r->n_evals, 1);
    const struct uf_plan_eval *e = &r->evals[0];
    CHECK(strcmp(e->type, "asr") == 0 && e->n == 3 && e->max_new_tokens == 64 &&
          strcmp(e->judge, "keyword") == 0 && !e->guard && e->n_keywords == 2 &&
          strcmp(e->keywords[1], "sorry") == 0);
    CHECK(r->tags.method && strcmp(r->tags.method, "x") == 0 && r->tags.has_p && r->tags.p == 0.5 &&
          !r->tags.has_seed && !r->tags.task);
    const struct uf_plan_tokenizer *tk;
    CHECK(uf_plan_node_model(&p, r, &tk) == s->model && tk == s->tokenizer);
    /* the JSON: a stage inside a run is a reference; keys sorted */
    const cJSON *from = cJSON_GetObjectItem(r->json, "from");
    CHECK(cJSON_GetArraySize(from) == 2 && strcmp(cJSON_GetObjectItem(from, "name")->valuestring, s->name) == 0);
    CHECK(strcmp(r->json->child->string, "_kind") == 0);
    uf_plan_free(&p);
}

static void test_errors(void) {
    struct uf_plan p;
    /* a key the library always sets, missing: named */
    cJSON *j = cJSON_Parse("{\"stages\":[],\"runs\":[{\"name\":\"r\",\"template\":\"plain\",\"optim\":{}}]}");
    CHECK(uf_plan_parse(j, &p) != 0 && strstr(uf_error(), "run r") && strstr(uf_error(), "'lr'"));
    j = cJSON_Parse("{\"stages\":{}}");
    CHECK(uf_plan_parse(j, &p) != 0);
    /* what the encoder cannot represent */
    const char *head = "local uf = require 'unforget'\nlocal w = uf.world {}\n"
                       "uf.run { name = 'r', model = uf.model.new {}, data = w.task, tags = ";
    char *t = uf_sprintf("%s{ f = function() end } }\n", head);
    CHECK(plan_of(t, &p) != 0 && strstr(uf_error(), "cannot encode a function") && strstr(uf_error(), "tags.f"));
    free(t);
    t = uf_sprintf("%s{ 1, a = 2 } }\n", head);
    CHECK(plan_of(t, &p) != 0 && strstr(uf_error(), "mixes list items and keys"));
    free(t);
    t = uf_sprintf("%s{ [3] = 1, a = 2 } }\n", head);
    CHECK(plan_of(t, &p) != 0 && strstr(uf_error(), "key"));
    free(t);
    t = uf_sprintf("%s{ x = 0/0 } }\n", head);
    CHECK(plan_of(t, &p) != 0 && strstr(uf_error(), "cannot encode"));
    free(t);
    t = uf_sprintf("%s{} }\n", head); /* {} is a list, as before */
    CHECK(plan_of(t, &p) == 0 && cJSON_IsArray(cJSON_GetObjectItem(p.runs[0].json, "tags")));
    uf_plan_free(&p);
    free(t);
}

/* bench --method: the method's table from the library, every dataset key given the buffer */
static void test_method_plan(void) {
    struct uf_plan p;
    CHECK_MSG(uf_recipe_method_plan("lisa", "/tmp/x.jsonl", &p) == 0, "%s", uf_error());
    const struct uf_plan_method *m = &p.runs[0].methods[0];
    CHECK(strcmp(m->type, "lisa") == 0 && m->n_datasets == 1 && strcmp(m->datasets[0].path, "/tmp/x.jsonl") == 0);
    CHECK(cJSON_GetObjectItem(m->cfg, "user_steps")->valuedouble == 900);
    uf_plan_free(&p);
    CHECK(uf_recipe_method_plan("nope", "/tmp/x.jsonl", &p) != 0 && strstr(uf_error(), "nope"));
}

int main(void) {
    UF_RUN(test_typed);
    UF_RUN(test_errors);
    UF_RUN(test_method_plan);
    return uf_test_summary();
}
