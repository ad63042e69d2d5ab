/* ckpt.h: run checkpoints: a list of named binary entries (weights, LoRA, optimizer moments,
 * RNG state, step, data position, ...), serialised, zstd-compressed (with zstd's frame checksum)
 * and written atomically (temp file, fsync, rename, fsync of the folder), so a kill at any point
 * leaves the previous checkpoint intact. Each entry also carries its own FNV-1a hash, so a
 * corrupt entry is named. Layout before compression (little-endian):
 *   "UFCKPT01" u32 n  { u32 name_len, name bytes, u64 size, u64 hash, size bytes } * n  u64 total_hash */
#ifndef UF_CKPT_H
#define UF_CKPT_H

#include <stddef.h>
#include <stdint.h>

struct uf_ckpt_entry {
    const char *name;
    const void *data;
    uint64_t size;
};

struct uf_ckpt {
    unsigned char *raw; /* decompressed bytes; entries point into it */
    size_t raw_size;
    int n;
    struct uf_ckpt_entry *e;
};

/* Writes the entries atomically to `path` (zstd level `level`, 0 = default 3). 0 or uf_fail. */
int uf_ckpt_write(const char *path, const struct uf_ckpt_entry *e, int n, int level);
/* Reads and verifies a checkpoint. 0 or uf_fail naming the file and the bad entry. */
int uf_ckpt_read(const char *path, struct uf_ckpt *c);
/* Parses decompressed bytes (takes ownership of `raw`, which must come from uf_malloc). */
int uf_ckpt_parse(unsigned char *raw, size_t size, const char *what, struct uf_ckpt *c);
/* Decompresses and parses a checkpoint held in memory (used by the fuzzer). */
int uf_ckpt_read_memory(const void *data, size_t size, const char *what, struct uf_ckpt *c);
const struct uf_ckpt_entry *uf_ckpt_find(const struct uf_ckpt *c, const char *name);
/* Copies entry `name` into dst, which must be exactly `size` bytes. 0 or uf_fail naming it. */
int uf_ckpt_get(const struct uf_ckpt *c, const char *name, void *dst, size_t size);
void uf_ckpt_free(struct uf_ckpt *c);

#endif
