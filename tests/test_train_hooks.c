/* test_train_hooks.c: a method hook that fails stops uf_trainer_run cleanly. For each hook of
 * train.h (batch, task_loss, init, extra, grad, project, finish) a test-only method fails at the
 * second step (or once, for init / finish); the run returns -1 with an error naming the method and
 * the hook, and after uf_trainer_free + uf_model_free the device holds exactly the bytes it held
 * before (after a warm-up run that creates the device's shared workspaces; the optimizer's
 * moments are device buffers: a leaked optimizer shows here in every build). The host side (index buffer, epoch iterator) is checked by LeakSanitizer in the ASan
 * build (build-asan: ctest -R test_train_hooks). */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "data/data.h"
#include "formats/tokenizer.h"
#include "model/model.h"
#include "train.h"
#include "uf_test.h"

static struct uf_device dev;
static struct uf_tokenizer tok;
static struct uf_dataset ds;
static struct uf_model_config cfg;

enum which { W_BATCH, W_TASK_LOSS, W_INIT, W_EXTRA, W_GRAD, W_PROJECT, W_FINISH, W_COUNT };
static const char *const hook_names[W_COUNT] = {"batch", "task_loss", "init", "extra",
                                                "grad", "project", "finish"};
static enum which fail_at;
static int calls;

/* fails on its second call (the second step), init and finish on their only call */
static int fail_now(enum which w) {
    if (w != fail_at) return 0;
    calls++;
    if (w == W_INIT || w == W_FINISH || calls == 2) return uf_fail("test hook %s fails", hook_names[w]);
    return 0;
}
static int h_init(struct uf_method *m, struct uf_trainer *tr) { (void)m, (void)tr; return fail_now(W_INIT); }
static int h_batch(struct uf_method *m, struct uf_trainer *tr, struct uf_train_batch *b) {
    (void)m, (void)tr, (void)b;
    return fail_now(W_BATCH);
}
static int h_task_loss(struct uf_method *m, struct uf_trainer *tr, const struct uf_train_batch *b) {
    (void)m, (void)tr, (void)b;
    return fail_now(W_TASK_LOSS);
}
static int h_extra(struct uf_method *m, struct uf_trainer *tr) { (void)m, (void)tr; return fail_now(W_EXTRA); }
static int h_grad(struct uf_method *m, struct uf_trainer *tr) { (void)m, (void)tr; return fail_now(W_GRAD); }
static int h_project(struct uf_method *m, struct uf_trainer *tr) { (void)m, (void)tr; return fail_now(W_PROJECT); }
static int h_finish(struct uf_method *m, struct uf_trainer *tr) { (void)m, (void)tr; return fail_now(W_FINISH); }

static const struct uf_method_ops failing_ops = {
    .name = "failing",
    .init = h_init,
    .batch = h_batch,
    .task_loss = h_task_loss,
    .extra = h_extra,
    .grad = h_grad,
    .project = h_project,
    .finish = h_finish,
};

/* w = W_COUNT: no hook fails */
static void run_failing(enum which w) {
    fail_at = w;
    calls = 0;
    size_t live0 = dev.bytes_live;
    struct uf_model m;
    CHECK(uf_model_init(&m, &dev, &cfg, 1, 0) == 0);
    struct uf_train_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.lr = 1e-2f, hp.beta1 = 0.9f, hp.beta2 = 0.999f, hp.eps = 1e-8f, hp.clip = 1.0f;
    hp.batch = 2, hp.micro_batch = 1, hp.max_len = 16, hp.seed = 5, hp.steps = 4;
    struct uf_trainer tr;
    uf_trainer_init(&tr, &dev, &m, &tok, "plain", &hp, &ds);
    tr.methods = uf_calloc(1, sizeof *tr.methods);
    tr.methods[0] = (struct uf_method){.ops = &failing_ops, .cfg = NULL, .slot = 1, .state = NULL};
    tr.n_methods = 1;
    tr.term_names[1] = failing_ops.name;
    int rc = uf_trainer_run(&tr, NULL, "test");
    if (w == W_COUNT) { /* the warm-up run: the device's shared workspaces now exist */
        CHECK_MSG(rc == 0, "%s", uf_error());
        uf_trainer_free(&tr);
        uf_model_free(&m);
        return;
    }
    CHECK_EQ_INT(rc, -1);
    char want[64];
    snprintf(want, sizeof want, "method failing (%s)", hook_names[w]);
    if (w != W_BATCH && w != W_TASK_LOSS) /* those two report their own error */
        CHECK_MSG(strstr(uf_error(), want) != NULL, "error: %s", uf_error());
    CHECK_MSG(strstr(uf_error(), "fails") != NULL, "error: %s", uf_error());
    uf_trainer_free(&tr);
    uf_model_free(&m);
    CHECK_MSG(dev.bytes_live == live0, "hook %s: %zu device bytes left after the failed run",
              hook_names[w], dev.bytes_live - live0);
}

static void test_failing_hooks(void) {
    run_failing(W_COUNT); /* device scratch and GEMM buffers are kept by the device: allocate them */
    for (int w = 0; w < W_COUNT; w++) run_failing((enum which)w);
}

int main(void) {
    uf_device_init(&dev, NULL);
    uf_dataset_init(&ds, "user");
    const char *p[] = {"ab", "xyz", "q", "hello"}, *r[] = {"cdef", "pos", "neg!", "ok"};
    for (int i = 0; i < 4; i++) uf_dataset_push(&ds, p[i], r[i], NULL, "task", NULL, UF_KIND_TASK);
    const char *texts[8];
    for (int i = 0; i < 4; i++) texts[i] = p[i], texts[4 + i] = r[i];
    CHECK(uf_tokenizer_train(&tok, texts, NULL, 8, 270) == 0);
    uf_model_config_defaults(&cfg, UF_FAMILY_LLAMA, tok.n_vocab, 16, 1, 2, 2, 24, 16);
    UF_RUN(test_failing_hooks);
    uf_dataset_free(&ds);
    uf_tokenizer_free(&tok);
    uf_device_free(&dev);
    return uf_test_summary();
}
