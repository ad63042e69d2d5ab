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
/* max |a-b| / max(1e-6, max|b|) over n elements */
double uf_max_rel_err(const float *a, const float *b, size_t n);
#endif
