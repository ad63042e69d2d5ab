/* plan_data.h: loads a dataset of the typed plan (formats/plan.h): a split of the default world
 * (generated once per seed and sizes, then shared), a file (JSONL/JSON/CSV/Parquet with field
 * mapping) or a named adapter, then the node's take / skip / sample operations. Files are named
 * "DIR_STEM" (gsm8k/test.jsonl -> gsm8k_test). Used by the trainer, the pipeline, evaluations
 * and `unforget check`. */
#ifndef UF_DATA_PLAN_DATA_H
#define UF_DATA_PLAN_DATA_H

#include "data/data.h"
#include "formats/plan.h"

/* 0, or uf_fail naming the source. */
int uf_data_load_plan(const struct uf_plan_dataset *spec, struct uf_dataset *out);

#endif
