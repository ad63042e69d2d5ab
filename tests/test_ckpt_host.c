/* test_ckpt_host.c: checkpoints round-trip; corruption and truncation are reported (naming the
 * entry where possible); a SIGKILL during a write leaves the previous checkpoint intact. */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "formats/ckpt.h"
#include "uf_test.h"
#include "core/util.h"

static char dir[] = "/tmp/uf_ckpt_XXXXXX";

static void test_roundtrip(void) {
    float w[1000];
    uint64_t step = 1234;
    for (int i = 0; i < 1000; i++) w[i] = (float)i * 0.5f;
    struct uf_ckpt_entry e[] = {{"weights", w, sizeof w}, {"step", &step, sizeof step}, {"empty", "", 0}};
    char *path = uf_sprintf("%s/a.ckpt", dir);
    CHECK(uf_ckpt_write(path, e, 3, 0) == 0);
    struct uf_ckpt c;
    CHECK_MSG(uf_ckpt_read(path, &c) == 0, "%s", uf_error());
    float w2[1000];
    uint64_t s2 = 0;
    CHECK(uf_ckpt_get(&c, "weights", w2, sizeof w2) == 0);
    CHECK(memcmp(w, w2, sizeof w) == 0);
    CHECK(uf_ckpt_get(&c, "step", &s2, sizeof s2) == 0 && s2 == 1234);
    CHECK(uf_ckpt_get(&c, "nope", w2, 4) != 0 && strstr(uf_error(), "'nope'"));
    CHECK(uf_ckpt_get(&c, "weights", w2, 8) != 0 && strstr(uf_error(), "'weights' has 4000 bytes"));
    uf_ckpt_free(&c);
    /* a seed for the fuzzer, written when asked */
    if (getenv("UF_WRITE_SEEDS")) {
        char *seed = uf_sprintf("%s/tests/fuzz/corpus_ckpt/small.ckpt", getenv("UF_SOURCE_DIR"));
        struct uf_ckpt_entry s[] = {{"step", &step, sizeof step}, {"w", w, 64}};
        uf_ckpt_write(seed, s, 2, 0);
        free(seed);
    }
    free(path);
}

static void test_corruption(void) {
    float w[256];
    for (int i = 0; i < 256; i++) w[i] = (float)i;
    struct uf_ckpt_entry e[] = {{"layer.0.weight", w, sizeof w}};
    char *path = uf_sprintf("%s/b.ckpt", dir);
    CHECK(uf_ckpt_write(path, e, 1, 0) == 0);
    size_t n;
    char *data = uf_file_read(path, &n);
    struct uf_ckpt c;
    /* flip bytes of the compressed frame: zstd's checksum or our hashes must catch every change
     * of content (a flip in bits zstd ignores may load, but then the content is unchanged) */
    for (size_t pos = 12; pos < n; pos += 7) {
        data[pos] ^= 0x5a;
        int rc = uf_ckpt_read_memory(data, n, "flipped", &c);
        if (rc == 0) { /* only acceptable if the content is still exactly right */
            const struct uf_ckpt_entry *x = uf_ckpt_find(&c, "layer.0.weight");
            CHECK_MSG(x && x->size == sizeof w && memcmp(x->data, w, sizeof w) == 0,
                      "flipped byte %zu silently changed the content", pos);
            uf_ckpt_free(&c);
        }
        data[pos] ^= 0x5a;
    }
    CHECK(uf_ckpt_read_memory(data, n / 2, "half", &c) != 0);
    CHECK(uf_ckpt_read_memory("garbage", 7, "garbage", &c) != 0);
    CHECK(strstr(uf_error(), "garbage") != NULL);
    free(data);
    /* corrupt the raw layout directly: the entry is named */
    unsigned char raw[8 + 4 + 4 + 3 + 16 + 4 + 8];
    size_t off = 0;
    memcpy(raw, "UFCKPT01", 8), off = 8;
    uint32_t one = 1, three = 3;
    uint64_t four = 4, h;
    memcpy(raw + off, &one, 4), off += 4;
    memcpy(raw + off, &three, 4), off += 4;
    memcpy(raw + off, "abc", 3), off += 3;
    memcpy(raw + off, &four, 8), off += 8;
    h = uf_hash64("wxyz", 4, UF_HASH_SEED) + 1; /* wrong */
    memcpy(raw + off, &h, 8), off += 8;
    memcpy(raw + off, "wxyz", 4), off += 4;
    uint64_t th = uf_hash64(raw, off, UF_HASH_SEED);
    memcpy(raw + off, &th, 8);
    unsigned char *copy = uf_malloc(sizeof raw);
    memcpy(copy, raw, sizeof raw);
    CHECK(uf_ckpt_parse(copy, sizeof raw, "raw", &c) != 0);
    CHECK_MSG(strstr(uf_error(), "entry 'abc' is corrupt") != NULL, "%s", uf_error());
    free(path);
}

/* A child rewrites the checkpoint in a loop with increasing step numbers; we SIGKILL it at
 * varying moments; afterwards the file must always be a complete, verifiable checkpoint. */
static void test_kill_during_write(void) {
    char *path = uf_sprintf("%s/k.ckpt", dir);
    size_t n = 4 << 20;
    unsigned char *big = uf_malloc(n);
    struct uf_rng r;
    uf_rng_init(&r, 5);
    for (size_t i = 0; i < n; i++) big[i] = (unsigned char)(uf_rng_u64(&r) & 0x0f);
    uint64_t step = 0;
    struct uf_ckpt_entry e[] = {{"step", &step, 8}, {"big", big, n}};
    CHECK(uf_ckpt_write(path, e, 2, 1) == 0);
    for (int trial = 0; trial < 6; trial++) {
        pid_t pid = fork();
        if (pid == 0) {
            for (step = 1;; step++) uf_ckpt_write(path, e, 2, 1);
        }
        struct timespec ts = {0, 20000000L + 37000000L * trial};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        struct uf_ckpt c;
        int rc = uf_ckpt_read(path, &c);
        CHECK_MSG(rc == 0, "trial %d: %s", trial, uf_error());
        if (rc == 0) {
            uint64_t s;
            CHECK(uf_ckpt_get(&c, "step", &s, 8) == 0);
            const struct uf_ckpt_entry *b = uf_ckpt_find(&c, "big");
            CHECK(b && b->size == n && memcmp(b->data, big, n) == 0);
            uf_ckpt_free(&c);
        }
    }
    free(big);
    free(path);
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    UF_RUN(test_roundtrip);
    UF_RUN(test_corruption);
    UF_RUN(test_kill_during_write);
    char *cmd = uf_sprintf("rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot clean %s\n", dir);
    free(cmd);
    return uf_test_summary();
}
