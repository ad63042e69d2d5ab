/* kernels.h: the OpenCL sources embedded at build time (cmake/embed_kernels.cmake). */
#ifndef UF_KERNELS_H
#define UF_KERNELS_H
#include <stddef.h>
struct uf_kernel_source {
    const char *name;   /* file name in opencl/, e.g. "norm.cl" */
    const char *source; /* NUL-terminated text */
    size_t size;
};
extern const struct uf_kernel_source uf_kernel_sources[]; /* ends with a {NULL} entry */
extern const struct uf_kernel_source uf_lua_sources[];    /* lua/ *.lua, e.g. "unforget/init.lua" */
#endif
