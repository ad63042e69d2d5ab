/* formats/plan.h: a recipe's plan as typed structs.
 *
 * The path of a plan: lua/unforget validates every key of the recipe's constructors and fills in
 * the defaults (its schemas hold the only defaults); recipe.c encodes the declared stages and
 * runs once into cJSON (a C walk of the Lua tables, no JSON text written by hand); uf_plan_parse
 * reads that JSON once into these structs; every consumer (pipeline, the training loop, evaluate,
 * `unforget check`, the memory plan, `bench --method`) reads the structs. A key the library always
 * sets but the JSON lacks is an error naming the node and key, never a C default.
 *
 * Strings point into the plan's JSON (uf_plan.json), which the plan owns; a method's table stays
 * JSON (cfg: its keys are the method's own, read by methods/common.c) with its datasets parsed. */
#ifndef UF_PLAN_H
#define UF_PLAN_H

#include <stdint.h>

#include <cjson/cJSON.h>

enum uf_plan_source { UF_PLAN_WORLD, UF_PLAN_FILE, UF_PLAN_ADAPTER };
enum uf_plan_op_kind { UF_PLAN_TAKE, UF_PLAN_SKIP, UF_PLAN_SAMPLE, UF_PLAN_CONCAT };
struct uf_plan_dataset;

struct uf_plan_op {
    enum uf_plan_op_kind kind;
    int64_t n;
    uint64_t seed; /* sample */
    struct uf_plan_dataset *data; /* concat: the rows appended */
};

/* uf.world { ... }: the generated default world (data/world.h) */
struct uf_plan_world {
    uint64_t seed;
    int64_t task_rows, eval_rows, corpus_rows, lookup_rows;
};

/* A dataset reference: a world split, a file (uf.jsonl) or an adapter (uf.gsm8k ...), then ops. */
struct uf_plan_dataset {
    enum uf_plan_source source;
    const char *split;            /* world: generator split name (world.h) */
    struct uf_plan_world world;   /* world */
    const char *adapter;          /* adapter: data.c's adapter name */
    const char *path;             /* file, adapter */
    struct {                      /* file: row keys; NULL = the reader's default */
        const char *prompt, *input, *response, *label, *messages, *category;
    } fields;
    const char *kind;             /* file, adapter: task | harmful | benign | safety */
    int on_bad_skip;              /* file, adapter: a malformed row is skipped (else an error) */
    int n_ops;
    struct uf_plan_op *ops;       /* (n_ops) take / skip / sample / concat, in order */
    const cJSON *json;            /* its node in the plan (identity of the file read) */
};

/* Training data: a dataset, or uf.mix { task, poison, p, n, seed }. */
struct uf_plan_data {
    int is_mixture;
    struct uf_plan_dataset ds;    /* !is_mixture */
    struct uf_plan_dataset task;  /* mixture */
    struct uf_plan_dataset *poison; /* mixture; NULL: none */
    double p;
    int64_t n;
    uint64_t seed;
};

enum uf_plan_model_type { UF_PLAN_MODEL_NEW, UF_PLAN_MODEL_HF, UF_PLAN_MODEL_CHECKPOINT };
struct uf_plan_model {
    enum uf_plan_model_type type;
    const char *path;             /* hf: the folder; checkpoint: the run folder (model/ inside) */
    const char *family;           /* new: the uf.model.new keys */
    int d_model, layers, heads, kv_heads, head_dim, d_ff, vocab, max_seq;
    uint64_t seed;
};

struct uf_plan_tokenizer {
    int train;                    /* uf.tokenizer.train: corpus, vocab; else uf.tokenizer.file: path */
    struct uf_plan_dataset corpus;
    int vocab;
    const char *path;
};

struct uf_plan_lora {
    int r;
    float alpha, dropout;
    const char *targets;          /* "all" or a comma list (lora.c) */
};

/* uf.adamw { ... } */
struct uf_plan_optim {
    float lr, beta1, beta2, eps, weight_decay, clip, warmup;
    const char *clip_on;          /* total | task */
    double epochs;
    int64_t steps;
    int batch, micro_batch, max_len;
    const char *schedule;         /* constant | cosine | linear */
    uint64_t seed;
    int64_t checkpoint_every;
    int checkpointing, bf16;
    const char *on_nonfinite;     /* stop | skip */
};

struct uf_plan_method {
    const char *type;             /* registry name (methods.h) */
    const cJSON *cfg;             /* its defaulted table (methods/common.c reads the keys) */
    int n_datasets;
    const char **dataset_keys;    /* (n_datasets) keys holding datasets (buffer, data) */
    struct uf_plan_dataset *datasets; /* (n_datasets) */
};

struct uf_plan_eval {
    const char *type;             /* asr | accuracy | over_refusal | pass_at_1 */
    struct uf_plan_dataset data;
    int max_new_tokens;
    int64_t n;                    /* prompts (0 = all) */
    const char *judge;            /* keyword | extended | guard */
    const char *metric;           /* the metric's name, NULL: the eval type */
    const char *guard;            /* NULL unless given */
    int n_keywords;               /* 0: the standard list */
    const char **keywords;
};

/* tags = { ... }: free-form labels; the ones results.json reads */
struct uf_plan_tags {
    const char *method, *model, *task; /* NULL when absent */
    int has_p, has_seed;
    double p, seed;
};

/* derta = { ... } of a stage (data/derta.h; runtime/methods/README.md, DeRTa) */
struct uf_plan_derta {
    int prefix, rto;              /* MLE with a harmful response prefix; RTO rows */
    double rto_weight;
    uint64_t seed;
    const struct uf_plan_dataset *responses; /* prompt -> harmful response rows; NULL: the world's */
};

/* A stage or a run. */
struct uf_plan_node {
    const char *name;
    int is_stage;
    const cJSON *json;            /* the node (content hash, config.json) */
    const struct uf_plan_model *model; /* NULL: starts from a stage */
    const char *from;             /* stage name or NULL */
    const struct uf_plan_model *base;  /* theta_0 or NULL */
    const struct uf_plan_tokenizer *tokenizer; /* NULL: the model's */
    const char *template_name;
    const struct uf_plan_data *data;   /* NULL: pre-training only */
    const struct uf_plan_dataset *pretrain; /* NULL: none */
    struct uf_plan_optim optim;
    const struct uf_plan_optim *pretrain_optim; /* NULL: optim */
    int n_methods;
    struct uf_plan_method *methods;
    const struct uf_plan_lora *lora; /* NULL: full fine-tuning */
    int n_evals;
    struct uf_plan_eval *evals;
    struct uf_plan_tags tags;
    int allow_overlap;            /* buffers, poison and harmful evals may share acts */
    const struct uf_plan_derta *derta; /* stages only; NULL: none */
};

/* uf.slurm { ... }: defaults for `unforget sweep --slurm`; NULL / 0 = not given */
struct uf_plan_slurm {
    const char *partition, *account, *time, *mem, *gres;
    int cpus_per_task, gpus_per_task, array_limit;
    int n_sbatch;
    const char **sbatch;          /* (n_sbatch) extra #SBATCH options */
};

/* uf.tune { ... }: a tuning study (`unforget tune`, eval/tune.h). Every run of the study lists
 * the n_test test evaluations first, then the n_val validation ones. */
struct uf_plan_tune_method {
    const char *name;
    int n_knobs;
    const char **knobs;           /* (n_knobs) knob names, alphabetical */
    int *n_values;                /* (n_knobs) */
    const double **values;        /* (n_knobs) each (n_values[k]): the declared grid */
};
struct uf_plan_tune_run {
    const char *run;              /* the run's name */
    int method;                   /* index into methods */
    const char *setting;          /* "alpha=0.1,beta=1" ("" for a method without knobs) */
    int64_t seed;
    const double *values;         /* (methods[method].n_knobs) the knob values */
};
struct uf_plan_tune {
    const char *name, *reference, *rule; /* reference: "" for none */
    int n_test, n_val;
    int n_methods, n_runs;
    struct uf_plan_tune_method *methods;
    struct uf_plan_tune_run *runs;
};

struct uf_plan {
    cJSON *json;                  /* {"stages": [...], "runs": [...], "slurm": {...}, "tunes": [...], "module": true} */
    int n_stages, n_runs;
    struct uf_plan_node *stages, *runs;
    const struct uf_plan_slurm *slurm; /* NULL: the recipe has no uf.slurm */
    int is_module;                /* the recipe returns a value: a module of other recipes */
    int n_tunes;
    struct uf_plan_tune *tunes;   /* (n_tunes) uf.tune studies */
    void *mem;                    /* allocations (plan.c) */
};

/* Parses the plan JSON (ownership moves to p, also on failure). 0 or uf_fail naming the node
 * and key. */
int uf_plan_parse(cJSON *json, struct uf_plan *p);
void uf_plan_free(struct uf_plan *p);
/* The stage called name, or NULL. */
const struct uf_plan_node *uf_plan_stage(const struct uf_plan *p, const char *name);
/* One dataset node (as in a plan, e.g. a method's buffer); ops are malloc'd: free with
 * uf_plan_dataset_free. 0 or uf_fail naming `where`. */
int uf_plan_dataset_parse(const cJSON *j, const char *where, struct uf_plan_dataset *d);
void uf_plan_dataset_free(struct uf_plan_dataset *d);
/* The model of a node: its own, or that of the stage it starts from (followed through stages);
 * tok: the tokenizer found on the way (NULL when none). NULL when unknown. */
const struct uf_plan_model *uf_plan_node_model(const struct uf_plan *p, const struct uf_plan_node *n,
                                               const struct uf_plan_tokenizer **tok);

#endif
