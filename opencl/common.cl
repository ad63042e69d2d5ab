/* common.cl: prepended to every kernel file. Helpers shared by all kernels. */
#define UF_IDX get_global_id(0)
