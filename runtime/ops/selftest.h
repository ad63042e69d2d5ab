/* selftest.h: quick checks of the device kernels against their plain-C references, run by
 * `unforget selftest` (and the README's first command). Each case returns the max relative
 * error it saw; a case passes under its stated bound. Add a case: one function + one table line
 * in selftest.c. */
#ifndef UF_SELFTEST_H
#define UF_SELFTEST_H
#include <stdio.h>
#include "core/device.h"
/* Runs every case, prints one line per case; returns the number of failures. */
int uf_selftest_run(struct uf_device *d, FILE *out);
/* full = 1 adds every variant a device may select: both GEMM backends, bf16 GEMM, every
 * attention head-dim instance with both backward forms, the other op path (--full). */
int uf_selftest_run_ex(struct uf_device *d, FILE *out, int full);
/* Prints one "ok"/"FAIL" line; returns 1 on failure (err > bound). */
int uf_selftest_case(FILE *out, const char *name, double err, double bound, double seconds);
/* max |a-b| / max(1e-6, max|b|) over n elements */
double uf_max_rel_err(const float *a, const float *b, size_t n);
#endif
