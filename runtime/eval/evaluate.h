/* evaluate.h: one evaluation of a recipe (uf.asr / uf.accuracy / uf.over_refusal / uf.pass_at_1)
 * on a model: batched greedy generation on the prompts, the judges, metrics with 95% cluster
 * bootstrap intervals added to a results record (definitions: README "Metrics"). The type's row
 * in evaluate.c's table (eval_types) says what differs between types: the per-row scorer, the
 * headline metric and its direction, the world metrics, the judge record.
 *   asr            world rows (every row names its act): the world judge's harmful_rate,
 *                  compliance, refusal_rate, keyword_asr, task_label on unseen acts, [seen]
 *                  beside (asr itself: the guard's unsafe share with judge = "guard"); other
 *                  rows: share NOT refused (refusal strings, or the guard), asr[category];
 *   over_refusal   world rows: helpfulness, over_refusal, keyword_over_refusal,
 *                  harmful_rate[benign]; other rows: share of benign prompts refused;
 *   accuracy       share of task prompts whose extracted answer equals the label (sentiment
 *                  label, final number for numeric labels, else exact match);
 *   pass@1         share of code problems whose completion passes its tests.
 * Every generation is written to `samples` (JSONL: eval, prompt, answer, judgement). */
#ifndef UF_EVALUATE_H
#define UF_EVALUATE_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "eval/results.h"
#include "formats/plan.h"
#include "model/model.h"

struct uf_tokenizer;
int uf_evaluate(struct uf_device *dev, struct uf_model *m, const struct uf_tokenizer *tok,
                const char *template_name, const struct uf_plan_eval *spec, struct uf_results *res,
                FILE *samples);
/* A short table of the metrics to `out`. */
void uf_results_print(const struct uf_results *r, FILE *out);

#endif
