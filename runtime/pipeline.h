/* pipeline.h: executes a recipe's plan (recipe.h) on one device.
 *   OUT/stages/NAME-HASH/  a stage's output, keyed by the content hash of its resolved config
 *                          (and of the stages it starts from): a second run reuses it
 *   OUT/NAME/              a run: config.json, tokenizer.json, metrics.jsonl, log.txt, ckpt/,
 *                          pretrain/ (when it pre-trains), model/ (Hugging Face layout),
 *                          samples.jsonl (every evaluated generation), results.json
 * A phase killed at any point resumes from its newest checkpoint when the same command runs
 * again; a node whose results.json and model/ exist is skipped. */
#ifndef UF_PIPELINE_H
#define UF_PIPELINE_H

#include "core/device.h"
#include "formats/plan.h"

struct uf_pipeline {
    const struct uf_plan *plan;
    const char *out;   /* output folder (default "runs") */
    const char *only;  /* run only this run (and the stages it needs) */
    int stages_only;   /* build every stage, no run (a sweep's first Slurm job) */
    struct uf_device dev;
    double clip_share;       /* the last run's share of clipped steps (NAN: none), for results.json */
    int64_t clip_steps;
};

int uf_pipeline_run(struct uf_pipeline *p); /* 0 or uf_fail */
/* Output folder (malloc'd) of a plan's stage or run under out: OUT/NAME or
 * OUT/stages/NAME-HASH. A node is done when its results.json and model/ exist. */
char *uf_pipeline_node_dir(const struct uf_plan *plan, const char *out, const struct uf_plan_node *node);
/* Runs the evaluations of the run named p->only (else the first run, else the first stage) on
 * the Hugging Face folder model_dir (with its tokenizer.json) and writes out_dir/results.json
 * and out_dir/samples.jsonl: e.g. to measure a model before any fine-tuning. */
int uf_pipeline_eval(struct uf_pipeline *p, const char *model_dir, const char *out_dir);

#endif
