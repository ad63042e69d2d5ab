/* methods.h: the continual-learning method registry (methods/registry.c). The hook interface
 * itself (struct uf_method_ops, struct uf_method) is in train.h; each method is one file
 * runtime/methods/<name>.c defining `const struct uf_method_ops uf_method_<name>`, documented
 * in runtime/methods/README.md. */
#ifndef UF_METHODS_H
#define UF_METHODS_H

#include <stddef.h>
#include <stdio.h>

#include "formats/plan.h"
#include "train/train.h"

/* The methods by name (registry.c's list), NULL-terminated; NULL for an unknown name. */
extern const struct uf_method_ops *const uf_method_registry[];
const struct uf_method_ops *uf_method_find(const char *name);

/* Composition rules, checked before anything runs, from the methods' traits (train.h).
 * methods: the plan's methods of a stage or run (formats/plan.h); lora: 1 when the run trains
 * LoRA adapters. Returns 0, or -1 with the reason in why (never NULL-terminated beyond n):
 *   - unknown method, a method listed twice;
 *   - a needs_lora method (safelora) without LoRA;
 *   - two rewrites_weights methods (magmax, linear, task_arith, ties, safemerge, safelora, ema);
 *   - a recomputes_grad method (refresh) with a replays one (er, der, derpp: refresh runs
 *     DER++ itself), or after another method with an extra hook.
 * Everything else composes: each hook runs over the methods in list order. */
int uf_methods_check(const struct uf_plan_method *methods, int n_methods, int lora, char *why, size_t n);

/* The methods' device state in a memory plan (memplan.h): the shared teacher and anchor and each
 * method's own state, from their traits (train.h), for in's model, LoRA and bf16 settings (set
 * them first). 0 or uf_fail (unknown method). */
struct uf_memplan_in;
int uf_methods_memplan(const struct uf_plan_method *methods, int n_methods, struct uf_memplan_in *in);

/* `unforget bench --method NAME` (methods/bench.c): times init, the training step and finish of
 * one method at its recipe defaults against plain fine-tuning on synthetic data, and the device
 * memory peak of each; prints to out. pm: the method as a recipe declares it (its table from
 * lua/unforget, recipe.h uf_recipe_method_plan), every dataset key naming buffer_path, where the
 * synthetic safety rows are written (and removed after). 0, 1 (failure, reason on stderr) or 2
 * (bad method). */
struct uf_device;
struct uf_model_config;
int uf_methods_bench(struct uf_device *d, const struct uf_model_config *c, int lora, int B, int T,
                     int steps, int warmup, const struct uf_plan_method *pm, const char *buffer_path,
                     FILE *out);
/* `unforget bench --method derta` (methods/bench.c): DeRTa, an alignment-stage option, timed as
 * the rows it adds: plain steps on synthetic harmful rows vs on their DeRTa rows (prefix + RTO),
 * per step and per epoch, and the build time. 0 or 1 (failure, reason on stderr). */
int uf_derta_bench(struct uf_device *d, const struct uf_model_config *c, int lora, int B, int T, int steps,
                   int warmup, FILE *out);

#endif
