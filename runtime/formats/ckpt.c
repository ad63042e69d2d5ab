/* ckpt.c: see ckpt.h. */
#include "formats/ckpt.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "core/util.h"

static const char magic[8] = {'U', 'F', 'C', 'K', 'P', 'T', '0', '1'};

static void put(unsigned char **p, const void *src, size_t n) {
    memcpy(*p, src, n);
    *p += n;
}

int uf_ckpt_write(const char *path, const struct uf_ckpt_entry *e, int n, int level) {
    size_t total = sizeof magic + 4 + 8;
    for (int i = 0; i < n; i++) total += 4 + strlen(e[i].name) + 8 + 8 + e[i].size;
    unsigned char *raw = uf_malloc(total), *p = raw;
    put(&p, magic, sizeof magic);
    uint32_t nn = (uint32_t)n;
    put(&p, &nn, 4);
    for (int i = 0; i < n; i++) {
        uint32_t len = (uint32_t)strlen(e[i].name);
        uint64_t size = e[i].size, h = uf_hash64(e[i].data, e[i].size, UF_HASH_SEED);
        put(&p, &len, 4);
        put(&p, e[i].name, len);
        put(&p, &size, 8);
        put(&p, &h, 8);
        if (size) put(&p, e[i].data, size);
    }
    uint64_t th = uf_hash64(raw, (size_t)(p - raw), UF_HASH_SEED);
    put(&p, &th, 8);

    size_t cap = ZSTD_compressBound(total);
    unsigned char *z = uf_malloc(cap);
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level > 0 ? level : 3);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
    size_t zn = ZSTD_compress2(cctx, z, cap, raw, total);
    ZSTD_freeCCtx(cctx);
    free(raw);
    if (ZSTD_isError(zn)) {
        free(z);
        return uf_fail("compressing checkpoint %s: %s", path, ZSTD_getErrorName(zn));
    }
    int rc = uf_file_write_atomic(path, z, zn);
    free(z);
    return rc;
}

int uf_ckpt_parse(unsigned char *raw, size_t size, const char *what, struct uf_ckpt *c) {
    memset(c, 0, sizeof *c);
    c->raw = raw;
    c->raw_size = size;
    size_t off = 0;
#define NEED(n, why)                                                                          \
    do {                                                                                      \
        if ((n) > size - off) {                                                               \
            uf_ckpt_free(c);                                                                  \
            return uf_fail("checkpoint %s is truncated (%s at byte %zu)", what, why, off);     \
        }                                                                                     \
    } while (0)
    NEED(sizeof magic + 4 + 8, "header");
    if (memcmp(raw, magic, sizeof magic) != 0) {
        uf_ckpt_free(c);
        return uf_fail("%s is not an unforget checkpoint (bad magic)", what);
    }
    off += sizeof magic;
    uint32_t n;
    memcpy(&n, raw + off, 4);
    off += 4;
    if (n > (size - off) / 20) {
        uf_ckpt_free(c);
        return uf_fail("checkpoint %s is corrupt: %u entries cannot fit", what, n);
    }
    c->e = uf_calloc(n ? n : 1, sizeof *c->e);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t len;
        uint64_t esz, h;
        NEED(4, "entry name length");
        memcpy(&len, raw + off, 4);
        off += 4;
        NEED((size_t)len + 16, "entry name");
        /* names are stored without a NUL: shift by one to terminate in place is not possible,
         * so keep a copy */
        char *name = uf_strndup((const char *)raw + off, len);
        off += len;
        memcpy(&esz, raw + off, 8);
        memcpy(&h, raw + off + 8, 8);
        off += 16;
        if (esz > size - off) {
            uf_fail("checkpoint %s: entry '%s' is truncated (%llu bytes declared, %zu left)", what,
                    name, (unsigned long long)esz, size - off);
            free(name);
            uf_ckpt_free(c);
            return -1;
        }
        if (uf_hash64(raw + off, (size_t)esz, UF_HASH_SEED) != h) {
            uf_fail("checkpoint %s: entry '%s' is corrupt (checksum mismatch)", what, name);
            free(name);
            uf_ckpt_free(c);
            return -1;
        }
        c->e[i].name = name;
        c->e[i].data = raw + off;
        c->e[i].size = esz;
        c->n = (int)i + 1;
        off += (size_t)esz;
    }
    NEED(8, "trailer");
    uint64_t th;
    memcpy(&th, raw + off, 8);
    if (uf_hash64(raw, off, UF_HASH_SEED) != th) {
        uf_ckpt_free(c);
        return uf_fail("checkpoint %s is corrupt (overall checksum mismatch)", what);
    }
    if (off + 8 != size) {
        uf_ckpt_free(c);
        return uf_fail("checkpoint %s has %zu trailing bytes", what, size - off - 8);
    }
#undef NEED
    return 0;
}

int uf_ckpt_read_memory(const void *data, size_t size, const char *what, struct uf_ckpt *c) {
    memset(c, 0, sizeof *c);
    unsigned long long rsz = ZSTD_getFrameContentSize(data, size);
    if (rsz == ZSTD_CONTENTSIZE_ERROR || rsz == ZSTD_CONTENTSIZE_UNKNOWN)
        return uf_fail("%s is not a zstd-compressed unforget checkpoint", what);
    if (rsz > ((unsigned long long)1 << 40) || rsz > (unsigned long long)size * 1000 + (1u << 20))
        return uf_fail("%s declares an implausible size (%llu bytes)", what, rsz);
    unsigned char *raw = uf_malloc((size_t)rsz);
    size_t got = ZSTD_decompress(raw, (size_t)rsz, data, size);
    if (ZSTD_isError(got) || got != rsz) {
        free(raw);
        return uf_fail("checkpoint %s is damaged: %s", what,
                       ZSTD_isError(got) ? ZSTD_getErrorName(got) : "size mismatch");
    }
    return uf_ckpt_parse(raw, (size_t)rsz, what, c);
}

int uf_ckpt_read(const char *path, struct uf_ckpt *c) {
    size_t size;
    char *data = uf_file_read(path, &size);
    memset(c, 0, sizeof *c);
    if (!data) return -1;
    int rc = uf_ckpt_read_memory(data, size, path, c);
    free(data);
    return rc;
}

const struct uf_ckpt_entry *uf_ckpt_find(const struct uf_ckpt *c, const char *name) {
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->e[i].name, name) == 0) return &c->e[i];
    return NULL;
}

int uf_ckpt_get(const struct uf_ckpt *c, const char *name, void *dst, size_t size) {
    const struct uf_ckpt_entry *e = uf_ckpt_find(c, name);
    if (!e) return uf_fail("checkpoint has no entry '%s'", name);
    if (e->size != size)
        return uf_fail("checkpoint entry '%s' has %llu bytes, expected %zu (a different model or "
                       "configuration?)", name, (unsigned long long)e->size, size);
    if (size) memcpy(dst, e->data, size);
    return 0;
}

void uf_ckpt_free(struct uf_ckpt *c) {
    for (int i = 0; i < c->n; i++) free((char *)c->e[i].name);
    free(c->e);
    free(c->raw);
    memset(c, 0, sizeof *c);
}
