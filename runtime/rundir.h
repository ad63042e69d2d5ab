/* rundir.h: a run directory and live progress.
 *   OUT/NAME/ config.json   the resolved run config (atomic write)
 *             metrics.jsonl one JSON object per logged step: step, each loss term, lr, grad_norm,
 *                           tokens_per_s, elapsed_s (appended and flushed per line)
 *             log.txt       the run's log lines
 *             results.json  evaluation results (atomic write; its presence marks the run done)
 *             ckpt/step-NNNNNN.ckpt and ckpt/latest (the name of the newest checkpoint)
 * Progress: on a terminal, one live line (step, loss, tokens/s, ETA) redrawn at most 5 times a
 * second; otherwise a plain line every 10 s or 10% of the steps. */
#ifndef UF_RUNDIR_H
#define UF_RUNDIR_H

#include <stdio.h>

struct uf_rundir {
    char *path;      /* OUT/NAME */
    FILE *metrics;   /* metrics.jsonl (append) */
    FILE *log;       /* log.txt (append) */
};

/* 0 or uf_fail; removes temp files a killed writer left (the caller holds the run's lock). */
int uf_rundir_open(struct uf_rundir *r, const char *out, const char *name);
void uf_rundir_close(struct uf_rundir *r);
char *uf_rundir_file(const struct uf_rundir *r, const char *rel); /* malloc'd OUT/NAME/rel */
int uf_rundir_write(const struct uf_rundir *r, const char *rel, const char *text); /* atomic */
int uf_rundir_done(const char *out, const char *name); /* results.json exists */
/* Appends one metrics line (a complete JSON object without newline). */
void uf_rundir_metric(struct uf_rundir *r, const char *json_object);
/* Drops metrics lines whose "step" is greater than `step` and unfinished lines (at every
 * start: from a checkpoint or from step 0). */
int uf_rundir_truncate_metrics(struct uf_rundir *r, long step);
void uf_rundir_log(struct uf_rundir *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Path of the newest checkpoint (malloc'd) or NULL when there is none. */
char *uf_rundir_latest_ckpt(const struct uf_rundir *r);
/* The checkpoints to resume from, best first: the one `latest` names, then every
 * ckpt/step-N.ckpt newest first (when `latest` is missing or names a damaged file). Returns the
 * count; *paths is a malloc'd array of malloc'd paths (free each and the array). */
int uf_rundir_ckpt_list(const struct uf_rundir *r, char ***paths);
/* Path for the checkpoint of `step`; after writing it call uf_rundir_set_latest (keeps `keep`). */
char *uf_rundir_ckpt_path(const struct uf_rundir *r, long step);
int uf_rundir_set_latest(const struct uf_rundir *r, long step, int keep);

/* Folder locks (OUT/stages/NAME-HASH/.lock, OUT/NAME/.lock): one process at a time trains a
 * stage or a run, wherever it runs. POSIX record locks (fcntl F_SETLK/F_SETLKW on the whole
 * file): local file systems, NFSv4 (and NFSv3 with lockd), Lustre, GPFS and BeeGFS honour them
 * across machines, and the kernel (or the NFS server, when a client's lease expires) drops them
 * when the holder dies, so there are no stale locks to clean up. The holder writes
 * "host pid PID since TIME" into the file for `unforget status`. A file system that refuses
 * locks (ENOLCK, EOPNOTSUPP: some FUSE file systems) is an error, never ignored; so is an NFS
 * mount whose locks Linux keeps local to one machine (mounted -o nolock or local_lock=all|posix,
 * found in /proc/self/mountinfo), where a lock would succeed and protect nothing across nodes. */
/* 0: taken (*fd set); 1: held by another process (only when !wait; *holder filled); -1: uf_fail */
int uf_lock_take(const char *dir, int wait, int *fd, char *holder, size_t n);
void uf_lock_release(int fd);
/* 1 when abs_path lies on an NFS mount whose POSIX locks stay local to this machine according to
 * the text of a /proc/self/mountinfo (its mount point into mnt), else 0. */
int uf_lock_nfs_local(const char *mountinfo, const char *abs_path, char *mnt, size_t n);
/* 1 when another process holds dir's lock (holder text into buf), 0 when not, -1 when the lock
 * cannot be queried */
int uf_lock_held(const char *dir, char *holder, size_t n);

struct uf_progress {
    const char *label;
    long total;        /* steps */
    double t0, last_print;
    int tty;
    long last_step_printed;
};
void uf_progress_init(struct uf_progress *p, const char *label, long total);
/* step is 1-based; tokens_per_s measured by the caller */
void uf_progress_update(struct uf_progress *p, long step, double loss, double tokens_per_s);
void uf_progress_done(struct uf_progress *p);
/* "1h02m", "3m12s", "12s" */
void uf_format_duration(double seconds, char *buf, size_t n);

#endif
