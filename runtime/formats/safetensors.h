/* safetensors.h: read and write Hugging Face .safetensors files (single files and sharded
 * models described by model.safetensors.index.json).
 *
 * File format: 8-byte little-endian header length N, N bytes of JSON header, then the data
 * region. The header maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]}
 * (offsets relative to the data region) plus an optional "__metadata__" string->string map.
 *
 * Reading: the file is memory-mapped (read-only); tensors are views into the map. Everything
 * is validated at open time: header length bounds, JSON shape, known dtype, offsets inside the
 * data region, shape product * dtype size == byte span (overflow-checked), no two tensors
 * overlapping, no duplicate names. Errors name the file and the tensor.
 * uf_safetensors_read_f32 converts F32 / F16 / BF16 (and F64) to f32 into a caller buffer.
 *
 * Writing: uf_safetensors_write streams the header and tensors into "<path>.tmp.<pid>",
 * fsyncs and renames it over <path> (atomic: readers see the old or the new file).
 *
 * Not here: model-specific name mapping (hf.c), quantized dtypes. */
#ifndef UF_SAFETENSORS_H
#define UF_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

enum uf_st_dtype {
    UF_ST_F32 = 0, UF_ST_F16, UF_ST_BF16, UF_ST_F64, UF_ST_I64, UF_ST_I32, UF_ST_I16,
    UF_ST_I8, UF_ST_U8, UF_ST_BOOL, UF_ST_DTYPE_COUNT
};
const char *uf_st_dtype_name(enum uf_st_dtype d); /* "F32", ... */

#define UF_ST_MAX_DIMS 8

struct uf_st_tensor {
    char *name;
    enum uf_st_dtype dtype;
    int ndim;
    int64_t shape[UF_ST_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end;  /* offsets relative to the data region */
    const uint8_t *data;  /* view into the mapped file, (end - begin) bytes, maybe unaligned */
};

struct uf_safetensors {
    char *path;                   /* for error messages */
    uint8_t *base;                /* whole file (mapped or owned copy) */
    size_t size;
    int mapped;                   /* 1: munmap on free; 0: free() on free when owned */
    int owned;
    int n_tensors;
    struct uf_st_tensor *tensors; /* (n_tensors), sorted by name */
    int n_meta;
    char **meta_keys, **meta_vals;/* (n_meta) */
};

/* Opens and validates a file (mmap). 0 or uf_fail("<path>: ..."). */
int uf_safetensors_open(struct uf_safetensors *st, const char *path);
/* Parses a file image already in memory; the memory must outlive st (it is not copied).
 * `name` is used in error messages. */
int uf_safetensors_open_memory(struct uf_safetensors *st, const void *data, size_t size,
                               const char *name);
void uf_safetensors_free(struct uf_safetensors *st);

const struct uf_st_tensor *uf_safetensors_find(const struct uf_safetensors *st, const char *name);
const char *uf_safetensors_meta(const struct uf_safetensors *st, const char *key); /* or NULL */
/* Converts tensor `name` to f32 into dst; n must equal its element count. 0 or uf_fail. */
int uf_safetensors_read_f32(const struct uf_safetensors *st, const char *name, float *dst,
                            int64_t n);
/* Converts one tensor (already looked up) to f32; `where` names the file in errors. */
int uf_st_tensor_to_f32(const struct uf_st_tensor *t, const char *where, float *dst, int64_t n);

/* ---- sharded models ---------------------------------------------------------------------
 * uf_st_model_open accepts: a .safetensors file, a model.safetensors.index.json, or a folder
 * holding model.safetensors or model.safetensors.index.json. For an index, every file named in
 * weight_map is opened, and each name in weight_map must be found in the file it points to. */
struct uf_st_model {
    int n_files;
    struct uf_safetensors *files; /* (n_files) */
};
int uf_st_model_open(struct uf_st_model *m, const char *path);
void uf_st_model_free(struct uf_st_model *m);
/* Finds a tensor across all files; *file (optional) receives the file that holds it. */
const struct uf_st_tensor *uf_st_model_find(const struct uf_st_model *m, const char *name,
                                            const struct uf_safetensors **file);
int uf_st_model_read_f32(const struct uf_st_model *m, const char *name, float *dst, int64_t n);

/* ---- writing ------------------------------------------------------------------------- */
struct uf_st_write_tensor {
    const char *name;
    enum uf_st_dtype dtype;
    int ndim;
    int64_t shape[UF_ST_MAX_DIMS];
    const void *data; /* numel * dtype size bytes, little-endian */
};
/* Writes tensors in the given order; meta = NULL or n_meta key/value pairs
 * (meta[2*i] = key, meta[2*i+1] = value). Atomic (temp file + rename). 0 or uf_fail. */
int uf_safetensors_write(const char *path, const struct uf_st_write_tensor *t, int n,
                         const char *const *meta, int n_meta);

/* f16 / bf16 <-> f32 conversions (round to nearest even on the way down). */
float uf_f16_to_f32(uint16_t h);
float uf_bf16_to_f32(uint16_t h);
uint16_t uf_f32_to_f16(float f);
uint16_t uf_f32_to_bf16(float f);

#endif
