/* selftest_model.h: the model-level cases of `unforget selftest --full`: one tiny training step
 * (loss, logits, every gradient vs the plain-C reference model; one AdamW step) and one KV-cache
 * generation (prefill + decode logits vs the reference's full forward). Small enough for a
 * simulator (oclgrind, tests/test_oclgrind.sh). */
#ifndef UF_SELFTEST_MODEL_H
#define UF_SELFTEST_MODEL_H
#include <stdio.h>
#include "core/device.h"
/* Runs both cases, one line each; returns the number of failures. */
int uf_selftest_model_run(struct uf_device *d, FILE *out);
#endif
