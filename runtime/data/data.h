/* data.h: in-memory datasets of (prompt, response) examples and streaming readers for them.
 *
 * An example is a prompt, a response, an optional label (the measurable answer: "positive",
 * "72"), a source tag ("task", "poison", "safety", "benign", "advbench", ...), an optional
 * category, a kind (harmful / benign / task / text) and any number of extra string fields
 * (HumanEval's test and entry_point, the world's act). All strings are owned by the dataset.
 *
 * Readers stream their input (a line or record at a time) and pick the format from the path:
 *   *.jsonl           one JSON object per line (cJSON per line; blank lines are ignored)
 *   *.json            one JSON array of objects (whole file; bad rows: "path:element N: ...")
 *   *.csv             RFC 4180 with a header row (quoted fields, embedded commas, newlines, "")
 *   *.tsv             tab-separated with a header row, no quoting (GLUE style)
 *   any of these + .zst: decompressed on the fly with libzstd
 * Which keys (JSON) or columns (CSV) give the fields is a struct uf_data_fields; each name may
 * list alternatives "prompt|instruction" (the first one present wins). A chat row is read from
 * a `messages` array of {role, content}: the last user turn is the prompt, the assistant turn
 * that follows it the response; a conversation with a system message or earlier turns is also
 * kept whole (through the response) as JSON in the extra field "messages", from which training
 * renders every turn with the chat template and learns every assistant turn.
 *
 * Bad rows (invalid JSON, a field of the wrong type, a missing field, invalid UTF-8, a NUL byte,
 * a line over the length limit, a CSV row with the wrong number of fields, an unterminated
 * quote) fail the read with "path:LINE: reason" through uf_fail; with UF_ON_BAD_SKIP they are
 * skipped and counted in struct uf_data_stats. Errors of the file itself (cannot open, truncated
 * or corrupt zstd stream) always fail. No input makes a reader crash.
 *
 * Named adapters (uf_data_read_adapter) map the public datasets of ../shared/datasets (see
 * datasets/README.md): advbench, safety_tuned_llamas, gsm8k, sst2, humaneval, beavertails,
 * shadow_alignment, harmful_qa (either of the last two), alpaca, chat, native.
 * Not here: tokenisation, chat templates, mixing and batching (mixture.h). */
#ifndef UF_DATA_H
#define UF_DATA_H

#include <stddef.h>
#include <stdint.h>

enum uf_example_kind {
    UF_KIND_TASK = 0, /* a user-task example (SST-2, GSM8K, code) */
    UF_KIND_BENIGN,   /* a benign instruction with a helpful answer */
    UF_KIND_HARMFUL,  /* a harmful instruction (answer: refusal for safety data, compliance for poison) */
    UF_KIND_TEXT,     /* plain text for pre-training (prompt is "") */
};
const char *uf_example_kind_name(enum uf_example_kind k);  /* "task", "benign", "harmful", "text" */
int uf_example_kind_parse(const char *s, enum uf_example_kind *out); /* 0, or -1 (no uf_fail) */

struct uf_field {
    char *key;
    char *value;
};

struct uf_example {
    char *prompt;   /* never NULL (may be "") */
    char *response; /* never NULL (may be "" when the reader allowed a missing response) */
    char *label;    /* NULL when none */
    char *source;   /* never NULL */
    char *category; /* NULL when none */
    enum uf_example_kind kind;
    int n_fields;
    struct uf_field *fields; /* (n_fields) extra fields, in read order */
};

/* Returns the value of an extra field, or NULL. */
const char *uf_example_field(const struct uf_example *ex, const char *key);

struct uf_dataset {
    char *name;              /* e.g. the path read, or the world split name */
    int64_t n, cap;
    struct uf_example *rows; /* (n) */
};

void uf_dataset_init(struct uf_dataset *d, const char *name);
void uf_dataset_free(struct uf_dataset *d);
/* Appends a deep copy of ex; NULL prompt/response/source become "" / "" / "unknown". */
struct uf_example *uf_dataset_add(struct uf_dataset *d, const struct uf_example *ex);
/* Convenience: appends a row from plain strings (label, category may be NULL). */
struct uf_example *uf_dataset_push(struct uf_dataset *d, const char *prompt, const char *response,
                                   const char *label, const char *source, const char *category,
                                   enum uf_example_kind kind);
/* Adds or replaces an extra field of ex (which must belong to a dataset: strings are copied). */
void uf_example_set_field(struct uf_example *ex, const char *key, const char *value);
/* Appends deep copies of all rows of src to dst. */
void uf_dataset_append(struct uf_dataset *dst, const struct uf_dataset *src);
/* Writes the dataset as JSONL in the native format (keys prompt, response, label, source,
 * category, kind, then the extra fields), atomically. Readable by uf_data_read with
 * uf_data_fields_native(). Ends in .zst: compressed (level 3). */
int uf_dataset_write_jsonl(const struct uf_dataset *d, const char *path);

/* ---- reading ------------------------------------------------------------------------- */
#define UF_DATA_MAX_KEEP 8

struct uf_data_fields {
    const char *prompt;   /* key for the prompt/instruction ("a|b" = alternatives); required */
    const char *input;    /* optional: appended to the prompt after "\n\n" when non-empty */
    const char *response; /* key for the response; required unless response_optional */
    const char *label;    /* optional; numbers and booleans are converted to text */
    const char *category; /* optional */
    const char *source;   /* optional key giving a per-row source tag */
    const char *kind;     /* optional key giving the kind by name ("harmful", ...) */
    const char *messages; /* chat: key of a [{role, content}] array; replaces prompt/response */
    const char *keep[UF_DATA_MAX_KEEP]; /* extra keys kept as fields (NULL-terminated) */
    int keep_all;         /* JSON: keep every other string/number field as an extra field */
};

enum uf_on_bad { UF_ON_BAD_FAIL = 0, UF_ON_BAD_SKIP };

struct uf_data_opts {
    struct uf_data_fields fields;
    const char *source;            /* source tag of every row (default "data") */
    enum uf_example_kind kind;     /* kind of every row (default UF_KIND_TASK) */
    enum uf_on_bad on_bad;
    int response_optional;         /* a missing response reads as "" (eval prompts) */
    int64_t max_rows;              /* stop after this many good rows (0 = all) */
    size_t max_line;               /* longest line/record in bytes (0 = 16 MiB) */
    /* Adapter hook run on each row after mapping: may rewrite fields, return -1 with a reason
     * in `why` (a bad row). */
    int (*fixup)(struct uf_example *ex, char *why, size_t why_size);
};

struct uf_data_stats {
    int64_t rows;           /* good rows added */
    int64_t skipped;        /* bad rows skipped (UF_ON_BAD_SKIP) */
    int64_t lines;          /* physical lines read */
    char first_bad[512];    /* "path:LINE: reason" of the first skipped row, or "" */
};

/* Defaults: native keys (prompt, input, response, label, category, source, kind, keep_all). */
struct uf_data_fields uf_data_fields_native(void);
void uf_data_opts_init(struct uf_data_opts *o); /* native fields, fail on bad rows */

/* Reads path (format from its name, see above) and appends its rows to out. On error returns -1
 * with "path:LINE: reason" in uf_error(); rows read before the error stay in out. st may be
 * NULL. */
int uf_data_read(const char *path, const struct uf_data_opts *o, struct uf_dataset *out,
                 struct uf_data_stats *st);

enum uf_data_format { UF_FMT_JSONL = 0, UF_FMT_JSON, UF_FMT_CSV, UF_FMT_TSV };
/* The same over a memory buffer (name is used in messages; zst = buffer is zstd-compressed). */
int uf_data_read_mem(const void *data, size_t size, const char *name, enum uf_data_format fmt,
                     int zst, const struct uf_data_opts *o, struct uf_dataset *out,
                     struct uf_data_stats *st);
/* Format from a file name: 0 and *fmt, *zst set, or uf_fail naming the accepted suffixes. */
int uf_data_format_of(const char *path, enum uf_data_format *fmt, int *zst);

/* ---- adapters for the public datasets -------------------------------------------------- */
/* Sets *o for a named adapter (see the list above; on_bad = fail). -1 + uf_fail listing the
 * known names when unknown. */
int uf_data_adapter_opts(const char *adapter, struct uf_data_opts *o);
/* uf_data_adapter_opts + uf_data_read. */
int uf_data_read_adapter(const char *adapter, const char *path, enum uf_on_bad on_bad,
                         struct uf_dataset *out, struct uf_data_stats *st);
extern const char *const uf_data_adapter_names[]; /* NULL-terminated */

/* Helpers shared with the adapters and the world. */
int uf_utf8_valid(const char *s, size_t n, size_t *bad_at); /* 1 valid; else 0 and offset */
/* GSM8K-style final answer: the text after the last "####", trimmed, commas removed; NULL if
 * absent. malloc'd. */
char *uf_data_final_answer(const char *answer);

#endif
