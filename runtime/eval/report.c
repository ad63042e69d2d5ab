/* report.c: see report.h. Sections: string buffer, aggregation over seeds, SVG plots, HTML/CSV
 * writers, loading runs. */
#include "eval/report.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/metrics.h"
#include "core/util.h"

/* ---- growable string buffer ---------------------------------------------------------------- */
struct sbuf {
    char *p;
    size_t n, cap;
};

static void sb_reserve(struct sbuf *b, size_t extra) {
    if (b->n + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + extra + 1) cap *= 2;
    b->p = uf_realloc(b->p, cap);
    b->cap = cap;
}

static void sb_put(struct sbuf *b, const char *s, size_t n) {
    sb_reserve(b, n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_puts(struct sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_printf(struct sbuf *b, const char *fmt, ...) UF_PRINTF(2, 3);
static void sb_printf(struct sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    sb_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}

/* HTML/XML text and attribute escaping. */
static void sb_html(struct sbuf *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': sb_puts(b, "&amp;"); break;
        case '<': sb_puts(b, "&lt;"); break;
        case '>': sb_puts(b, "&gt;"); break;
        case '"': sb_puts(b, "&quot;"); break;
        case '\'': sb_puts(b, "&#39;"); break;
        default:
            if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t') sb_puts(b, " ");
            else sb_put(b, s, 1);
        }
    }
}

static void sb_csv(struct sbuf *b, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) {
        sb_puts(b, s);
        return;
    }
    sb_puts(b, "\"");
    for (; *s; s++) {
        if (*s == '"') sb_puts(b, "\"\"");
        else sb_put(b, s, 1);
    }
    sb_puts(b, "\"");
}

/* ---- aggregation over seeds --------------------------------------------------------------- */
struct run_entry {
    char *dir;
    struct uf_results res;
    struct uf_metrics_log log; /* n == 0 when there is no metrics.jsonl */
};

struct setting {
    const char *model, *task;
    double p;
};

struct cell {
    double *v; /* (nv,) one value per run (seed) */
    int nv;
    double lo_sum, hi_sum;
    int64_t n;
};

struct agg {
    struct run_entry *runs;
    int n_runs;
    const char **methods; int n_methods;
    struct setting *settings; int n_settings;
    const char **metrics; int n_metrics;
    const char *headline; /* "harmful_rate" or "asr" */
    int *lower;      /* (n_metrics,) */
    int *percent;    /* (n_metrics,) 1 when every value is in [0, 1]: shown x100 */
    struct cell *cells; /* (n_methods, n_settings, n_metrics) */
};

static struct cell *agg_cell(struct agg *a, int mi, int si, int ki) {
    return &a->cells[((size_t)mi * (size_t)a->n_settings + (size_t)si) * (size_t)a->n_metrics + (size_t)ki];
}

static int str_index(const char **list, int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0) return i;
    return -1;
}

static int setting_cmp(const void *a, const void *b) {
    const struct setting *x = a, *y = b;
    int c = strcmp(x->model, y->model);
    if (c) return c;
    if ((c = strcmp(x->task, y->task))) return c;
    return (x->p > y->p) - (x->p < y->p);
}

static int setting_index(const struct agg *a, const char *model, const char *task, double p) {
    for (int i = 0; i < a->n_settings; i++)
        if (strcmp(a->settings[i].model, model) == 0 && strcmp(a->settings[i].task, task) == 0 && a->settings[i].p == p)
            return i;
    return -1;
}

static void agg_build(struct agg *a) {
    int cap = a->n_runs;
    a->methods = uf_calloc((size_t)cap, sizeof *a->methods);
    a->settings = uf_calloc((size_t)cap, sizeof *a->settings);
    int mcap = 0;
    for (int i = 0; i < a->n_runs; i++) mcap += a->runs[i].res.n_metrics;
    a->metrics = uf_calloc((size_t)mcap + 1, sizeof *a->metrics);
    a->lower = uf_calloc((size_t)mcap + 1, sizeof *a->lower);
    a->percent = uf_calloc((size_t)mcap + 1, sizeof *a->percent);
    /* the safety headline first ("harmful_rate" where a run has it, else "asr"), then each run's
     * utility, then the rest in first-seen order */
    a->headline = "asr";
    for (int i = 0; i < a->n_runs; i++)
        if (uf_results_metric(&a->runs[i].res, "harmful_rate")) a->headline = "harmful_rate";
    for (int pass = 0; pass < 3; pass++)
        for (int i = 0; i < a->n_runs; i++) {
            const struct uf_results *r = &a->runs[i].res;
            for (int k = 0; k < r->n_metrics; k++) {
                const char *name = r->metrics[k].name;
                int want = pass == 0 ? strcmp(name, a->headline) == 0
                         : pass == 1 ? (r->utility && strcmp(name, r->utility) == 0) : 1;
                if (want && str_index(a->metrics, a->n_metrics, name) < 0) {
                    a->lower[a->n_metrics] = r->metrics[k].lower_is_better;
                    a->metrics[a->n_metrics++] = name;
                }
            }
        }
    for (int i = 0; i < a->n_runs; i++) {
        const struct uf_results *r = &a->runs[i].res;
        if (str_index(a->methods, a->n_methods, r->method) < 0) a->methods[a->n_methods++] = r->method;
        if (setting_index(a, r->model, r->task, r->poison_ratio) < 0)
            a->settings[a->n_settings++] = (struct setting){r->model, r->task, r->poison_ratio};
    }
    qsort(a->settings, (size_t)a->n_settings, sizeof *a->settings, setting_cmp);
    for (int k = 0; k < a->n_metrics; k++) a->percent[k] = 1;
    a->cells = uf_calloc((size_t)a->n_methods * (size_t)a->n_settings * (size_t)(a->n_metrics ? a->n_metrics : 1),
                         sizeof *a->cells);
    for (int i = 0; i < a->n_runs; i++) {
        const struct uf_results *r = &a->runs[i].res;
        int mi = str_index(a->methods, a->n_methods, r->method);
        int si = setting_index(a, r->model, r->task, r->poison_ratio);
        for (int k = 0; k < r->n_metrics; k++) {
            const struct uf_result_metric *m = &r->metrics[k];
            int ki = str_index(a->metrics, a->n_metrics, m->name);
            struct cell *c = agg_cell(a, mi, si, ki);
            c->v = uf_realloc(c->v, (size_t)(c->nv + 1) * sizeof *c->v);
            c->v[c->nv++] = m->value;
            c->lo_sum += m->lo;
            c->hi_sum += m->hi;
            c->n = UF_MAX(c->n, m->n);
            if (m->lo < 0 || m->hi > 1) a->percent[ki] = 0;
        }
    }
}

static void agg_free(struct agg *a) {
    size_t nc = (size_t)a->n_methods * (size_t)a->n_settings * (size_t)(a->n_metrics ? a->n_metrics : 1);
    for (size_t i = 0; a->cells && i < nc; i++) free(a->cells[i].v);
    free(a->cells);
    free(a->methods);
    free(a->settings);
    free(a->metrics);
    free(a->lower);
    free(a->percent);
}

struct cell_stats {
    int ok;
    struct uf_seed_stats s;
    double lo, hi;
};

static struct cell_stats cell_stats(struct agg *a, int mi, int si, int ki) {
    struct cell_stats cs = {0};
    if (ki < 0) return cs;
    struct cell *c = agg_cell(a, mi, si, ki);
    if (c->nv == 0) return cs;
    cs.ok = 1;
    cs.s = uf_metric_seed_stats(c->v, c->nv);
    cs.lo = c->lo_sum / c->nv;
    cs.hi = c->hi_sum / c->nv;
    return cs;
}

/* The utility metric of a model/task group: the first run's utility there. */
static const char *group_utility(const struct agg *a, const char *model, const char *task) {
    for (int i = 0; i < a->n_runs; i++) {
        const struct uf_results *r = &a->runs[i].res;
        if (r->utility && strcmp(r->model, model) == 0 && strcmp(r->task, task) == 0) return r->utility;
    }
    return NULL;
}

/* ---- SVG plots ---------------------------------------------------------------------------- */
static const char *const palette[10] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                        "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

struct plot {
    double x0, x1, y0, y1; /* data ranges */
    double w, h;           /* pixel size */
    double ml, mr, mt, mb; /* margins */
};

static double plot_x(const struct plot *p, double x) { return p->ml + (x - p->x0) / (p->x1 - p->x0) * (p->w - p->ml - p->mr); }
static double plot_y(const struct plot *p, double y) { return p->h - p->mb - (y - p->y0) / (p->y1 - p->y0) * (p->h - p->mt - p->mb); }

static double nice_step(double range, int target) {
    double raw = range / target, mag = pow(10.0, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1.0 : f < 3.0 ? 2.0 : f < 7.0 ? 5.0 : 10.0) * mag;
}

/* Widens [*lo, *hi] to a non-empty range with a little padding. */
static void pad_range(double *lo, double *hi, double pad_frac) {
    if (!isfinite(*lo) || !isfinite(*hi)) { *lo = 0; *hi = 1; return; }
    if (*hi - *lo < 1e-12) {
        double d = fabs(*lo) > 1e-12 ? fabs(*lo) * 0.1 : 0.5;
        *lo -= d;
        *hi += d;
        return;
    }
    double d = (*hi - *lo) * pad_frac;
    *lo -= d;
    *hi += d;
}

static void svg_begin(struct sbuf *b, const struct plot *p, const char *title, const char *xlabel, const char *ylabel) {
    sb_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                 "font-family=\"sans-serif\" font-size=\"11\" role=\"img\">\n", p->w, p->h, p->w, p->h);
    sb_puts(b, "<title>");
    sb_html(b, title);
    sb_puts(b, "</title>\n");
    sb_printf(b, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", p->w, p->h);
    sb_printf(b, "<text x=\"%.1f\" y=\"16\" font-size=\"13\" font-weight=\"bold\">", p->ml);
    sb_html(b, title);
    sb_puts(b, "</text>\n");
    /* grid + ticks */
    double xs = nice_step(p->x1 - p->x0, 6), ys = nice_step(p->y1 - p->y0, 5);
    /* integer-counted ticks: t += step could stall at large magnitudes */
    double xt0 = ceil(p->x0 / xs) * xs, yt0 = ceil(p->y0 / ys) * ys;
    for (int i = 0; i < 40; i++) {
        double t = xt0 + i * xs;
        if (!(t <= p->x1 + xs * 1e-9)) break;
        double x = plot_x(p, t);
        sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>"
                     "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n",
                  x, p->mt, x, p->h - p->mb, x, p->h - p->mb + 14, fabs(t) < xs * 1e-9 ? 0.0 : t);
    }
    for (int i = 0; i < 40; i++) {
        double t = yt0 + i * ys;
        if (!(t <= p->y1 + ys * 1e-9)) break;
        double y = plot_y(p, t);
        sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>"
                     "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                  p->ml, y, p->w - p->mr, y, p->ml - 4, y + 4, fabs(t) < ys * 1e-9 ? 0.0 : t);
    }
    sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333333\"/>\n",
              p->ml, p->mt, p->w - p->ml - p->mr, p->h - p->mt - p->mb);
    sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", p->ml + (p->w - p->ml - p->mr) / 2, p->h - 6);
    sb_html(b, xlabel);
    sb_printf(b, "</text>\n<text transform=\"translate(14 %.1f) rotate(-90)\" text-anchor=\"middle\">",
              p->mt + (p->h - p->mt - p->mb) / 2);
    sb_html(b, ylabel);
    sb_puts(b, "</text>\n");
}

static void svg_legend(struct sbuf *b, const struct plot *p, const char **names, int n) {
    double x = p->w - p->mr + 10, y = p->mt + 6;
    for (int i = 0; i < n; i++, y += 16) {
        sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"10\" fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\">",
                  x, y, palette[i % 10], x + 16, y + 9);
        sb_html(b, names[i]);
        sb_puts(b, "</text>\n");
    }
}

/* ASR vs poison ratio, one line per method, for one model/task. */
static void plot_asr_vs_poison(struct sbuf *b, struct agg *a, const char *model, const char *task) {
    int ka = str_index(a->metrics, a->n_metrics, a->headline);
    if (ka < 0) return;
    double sc = a->percent[ka] ? 100.0 : 1.0;
    struct plot p = {0, 1, 0, 100, 540, 330, 56, 120, 26, 40};
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int si = 0; si < a->n_settings; si++) {
        if (strcmp(a->settings[si].model, model) || strcmp(a->settings[si].task, task)) continue;
        xmin = UF_MIN(xmin, a->settings[si].p);
        xmax = UF_MAX(xmax, a->settings[si].p);
        for (int mi = 0; mi < a->n_methods; mi++) {
            struct cell_stats cs = cell_stats(a, mi, si, ka);
            if (!cs.ok) continue;
            ymin = UF_MIN(ymin, cs.lo * sc);
            ymax = UF_MAX(ymax, cs.hi * sc);
        }
    }
    if (!isfinite(ymin)) return;
    p.x0 = xmin; p.x1 = xmax;
    pad_range(&p.x0, &p.x1, 0.05);
    if (a->percent[ka]) { p.y0 = 0; p.y1 = 100; }
    else { p.y0 = ymin; p.y1 = ymax; pad_range(&p.y0, &p.y1, 0.05); }
    char *title = uf_sprintf("%s vs poison ratio: %s / %s", a->headline, model, task);
    char yl[64];
    snprintf(yl, sizeof yl, "%s%s", a->headline, a->percent[ka] ? " (%)" : "");
    svg_begin(b, &p, title, "poison ratio", yl);
    free(title);
    for (int mi = 0; mi < a->n_methods; mi++) {
        const char *col = palette[mi % 10];
        struct sbuf line = {0};
        int npts = 0;
        for (int si = 0; si < a->n_settings; si++) {
            if (strcmp(a->settings[si].model, model) || strcmp(a->settings[si].task, task)) continue;
            struct cell_stats cs = cell_stats(a, mi, si, ka);
            if (!cs.ok) continue;
            double x = plot_x(&p, a->settings[si].p), y = plot_y(&p, cs.s.mean * sc);
            sb_printf(&line, "%s%.1f,%.1f", npts ? " " : "", x, y);
            npts++;
            double ylo = plot_y(&p, cs.lo * sc), yhi = plot_y(&p, cs.hi * sc);
            sb_printf(b, "<g stroke=\"%s\"><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                         "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/></g>\n",
                      col, x, ylo, x, yhi, x - 4, ylo, x + 4, ylo, x - 4, yhi, x + 4, yhi);
            sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"><title>", x, y, col);
            sb_html(b, a->methods[mi]);
            sb_printf(b, " p=%g: %.2f [%.2f, %.2f], %d seed(s)</title></circle>\n", a->settings[si].p,
                      cs.s.mean * sc, cs.lo * sc, cs.hi * sc, cs.s.n);
        }
        if (npts > 1) sb_printf(b, "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>\n", line.p, col);
        free(line.p);
    }
    svg_legend(b, &p, a->methods, a->n_methods);
    sb_puts(b, "</svg>\n");
}

struct spoint {
    double u, asr;
    int method;
    double p;
    int front;
};

static int spoint_cmp(const void *x, const void *y) {
    const struct spoint *a = x, *b = y;
    if (a->u != b->u) return a->u < b->u ? 1 : -1; /* utility descending */
    return (a->asr > b->asr) - (a->asr < b->asr);  /* then ASR ascending */
}

/* ASR (lower better) vs utility (higher better) for one model/task; Pareto front dashed. */
static void plot_asr_vs_utility(struct sbuf *b, struct agg *a, const char *model, const char *task) {
    const char *uname = group_utility(a, model, task);
    int ka = str_index(a->metrics, a->n_metrics, a->headline);
    int ku = uname ? str_index(a->metrics, a->n_metrics, uname) : -1;
    if (ka < 0 || ku < 0) return;
    double sa = a->percent[ka] ? 100.0 : 1.0, su = a->percent[ku] ? 100.0 : 1.0;
    struct spoint *pts = uf_calloc((size_t)a->n_methods * (size_t)a->n_settings + 1, sizeof *pts);
    int np = 0;
    for (int si = 0; si < a->n_settings; si++) {
        if (strcmp(a->settings[si].model, model) || strcmp(a->settings[si].task, task)) continue;
        for (int mi = 0; mi < a->n_methods; mi++) {
            struct cell_stats ca = cell_stats(a, mi, si, ka), cu = cell_stats(a, mi, si, ku);
            if (!ca.ok || !cu.ok) continue;
            pts[np++] = (struct spoint){cu.s.mean * su, ca.s.mean * sa, mi, a->settings[si].p, 0};
        }
    }
    if (np == 0) { free(pts); return; }
    /* Pareto front: sorted by utility descending, a point is on the front when its ASR is below
     * every point with at least its utility. */
    qsort(pts, (size_t)np, sizeof *pts, spoint_cmp);
    double best = INFINITY;
    for (int i = 0; i < np; i++)
        if (pts[i].asr < best) { pts[i].front = 1; best = pts[i].asr; }
    struct plot p = {0, 1, 0, 1, 540, 330, 56, 120, 26, 40};
    double umin = INFINITY, umax = -INFINITY, amin = INFINITY, amax = -INFINITY;
    for (int i = 0; i < np; i++) {
        umin = UF_MIN(umin, pts[i].u); umax = UF_MAX(umax, pts[i].u);
        amin = UF_MIN(amin, pts[i].asr); amax = UF_MAX(amax, pts[i].asr);
    }
    p.x0 = umin; p.x1 = umax; p.y0 = amin; p.y1 = amax;
    pad_range(&p.x0, &p.x1, 0.08);
    pad_range(&p.y0, &p.y1, 0.08);
    char *title = uf_sprintf("%s vs %s: %s / %s (dashed: Pareto front)", a->headline, uname, model, task);
    char *xl = uf_sprintf("%s%s (higher is better)", uname, a->percent[ku] ? " (%)" : "");
    svg_begin(b, &p, title, xl, a->percent[ka] ? "safety headline (%) (lower is better)" : "safety headline (lower is better)");
    free(title);
    free(xl);
    struct sbuf front = {0};
    int nf = 0;
    for (int i = np - 1; i >= 0; i--) /* utility ascending */
        if (pts[i].front) sb_printf(&front, "%s%.1f,%.1f", nf++ ? " " : "", plot_x(&p, pts[i].u), plot_y(&p, pts[i].asr));
    if (nf > 1) sb_printf(b, "<polyline points=\"%s\" fill=\"none\" stroke=\"#444444\" stroke-width=\"1.5\" stroke-dasharray=\"5 4\"/>\n", front.p);
    free(front.p);
    for (int i = 0; i < np; i++) {
        double x = plot_x(&p, pts[i].u), y = plot_y(&p, pts[i].asr);
        const char *col = palette[pts[i].method % 10];
        if (pts[i].front) sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"7\" fill=\"none\" stroke=\"#444444\"/>\n", x, y);
        sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"><title>", x, y, col);
        sb_html(b, a->methods[pts[i].method]);
        sb_printf(b, " p=%g: %s %.2f, ASR %.2f%s</title></circle>\n", pts[i].p, uname, pts[i].u, pts[i].asr,
                  pts[i].front ? " (Pareto)" : "");
        sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"9\" fill=\"#555555\">p=%g</text>\n", x + 6, y - 5, pts[i].p);
    }
    svg_legend(b, &p, a->methods, a->n_methods);
    sb_puts(b, "</svg>\n");
    free(pts);
}

/* One loss term over steps, a line per run coloured by method. */
static void plot_loss_term(struct sbuf *b, struct agg *a, const char *term) {
    struct plot p = {0, 1, 0, 1, 540, 300, 56, 120, 26, 40};
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int i = 0; i < a->n_runs; i++) {
        const struct uf_metrics_log *m = &a->runs[i].log;
        int t = str_index((const char **)m->terms, m->n_terms, term);
        if (t < 0) continue;
        for (int64_t r = 0; r < m->n; r++) {
            double v = m->loss[r * m->n_terms + t];
            if (!isfinite(v)) continue;
            xmin = UF_MIN(xmin, m->step[r]); xmax = UF_MAX(xmax, m->step[r]);
            ymin = UF_MIN(ymin, v); ymax = UF_MAX(ymax, v);
        }
    }
    if (!isfinite(ymin)) return;
    p.x0 = xmin; p.x1 = xmax; p.y0 = ymin; p.y1 = ymax;
    pad_range(&p.x0, &p.x1, 0.0);
    pad_range(&p.y0, &p.y1, 0.05);
    char *title = uf_sprintf("loss: %s", term);
    svg_begin(b, &p, title, "step", term);
    free(title);
    for (int i = 0; i < a->n_runs; i++) {
        const struct uf_metrics_log *m = &a->runs[i].log;
        int t = str_index((const char **)m->terms, m->n_terms, term);
        if (t < 0) continue;
        int mi = str_index(a->methods, a->n_methods, a->runs[i].res.method);
        int64_t stride = m->n > 400 ? (m->n + 399) / 400 : 1;
        struct sbuf line = {0};
        int npts = 0;
        for (int64_t r = 0; r < m->n; r += stride) {
            double v = m->loss[r * m->n_terms + t];
            if (!isfinite(v)) continue;
            sb_printf(&line, "%s%.1f,%.1f", npts++ ? " " : "", plot_x(&p, m->step[r]), plot_y(&p, v));
        }
        if (npts > 0) {
            sb_printf(b, "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" stroke-opacity=\"0.85\"><title>",
                      line.p, palette[(mi < 0 ? 0 : mi) % 10]);
            sb_html(b, a->runs[i].res.run);
            sb_puts(b, "</title></polyline>\n");
        }
        free(line.p);
    }
    svg_legend(b, &p, a->methods, a->n_methods);
    sb_puts(b, "</svg>\n");
}

/* ---- HTML and CSV ------------------------------------------------------------------------- */
static void fmt_value(char *out, size_t cap, double v, int percent) {
    if (!isfinite(v)) snprintf(out, cap, "-");
    else if (percent) snprintf(out, cap, "%.1f", v * 100.0);
    else snprintf(out, cap, "%.4g", v);
}

static int cell_is_best(struct agg *a, int mi, int si, int ki) {
    struct cell_stats me = cell_stats(a, mi, si, ki);
    if (!me.ok) return 0;
    int others = 0;
    for (int j = 0; j < a->n_methods; j++) {
        if (j == mi) continue;
        struct cell_stats o = cell_stats(a, j, si, ki);
        if (!o.ok) continue;
        others++;
        if (a->lower[ki] ? o.s.mean < me.s.mean : o.s.mean > me.s.mean) return 0;
    }
    return others > 0;
}

static void write_table(struct sbuf *b, struct agg *a) {
    sb_puts(b, "<table class=\"results\">\n<thead><tr><th rowspan=\"2\">method</th>");
    for (int si = 0; si < a->n_settings; si++) {
        sb_printf(b, "<th colspan=\"%d\" class=\"grp\">", a->n_metrics);
        sb_html(b, a->settings[si].model);
        sb_puts(b, " / ");
        sb_html(b, a->settings[si].task);
        sb_printf(b, "<br>poison ratio %g</th>", a->settings[si].p);
    }
    sb_puts(b, "</tr>\n<tr>");
    for (int si = 0; si < a->n_settings; si++)
        for (int k = 0; k < a->n_metrics; k++) {
            sb_puts(b, "<th>");
            sb_html(b, a->metrics[k]);
            sb_printf(b, "%s %s</th>", a->percent[k] ? " (%)" : "", a->lower[k] ? "&#8595;" : "&#8593;");
        }
    sb_puts(b, "</tr></thead>\n<tbody>\n");
    for (int mi = 0; mi < a->n_methods; mi++) {
        sb_puts(b, "<tr><th class=\"method\">");
        sb_html(b, a->methods[mi]);
        sb_puts(b, "</th>");
        for (int si = 0; si < a->n_settings; si++)
            for (int k = 0; k < a->n_metrics; k++) {
                struct cell_stats cs = cell_stats(a, mi, si, k);
                if (!cs.ok) {
                    sb_puts(b, "<td class=\"na\">&#8211;</td>");
                    continue;
                }
                int best = cell_is_best(a, mi, si, k);
                double sc = a->percent[k] ? 100.0 : 1.0;
                char v[64], lo[32], hi[32];
                uf_metric_format_pm(v, sizeof v, cs.s, sc, a->percent[k] ? 1 : 3);
                fmt_value(lo, sizeof lo, cs.lo, a->percent[k]);
                fmt_value(hi, sizeof hi, cs.hi, a->percent[k]);
                sb_printf(b, "<td%s title=\"%d seed(s), n = %lld\">%s%s%s <span class=\"ci\">[%s, %s]</span></td>",
                          best ? " class=\"best\"" : "", cs.s.n, (long long)agg_cell(a, mi, si, k)->n,
                          best ? "<b>&#9733; " : "", v, best ? "</b>" : "", lo, hi);
            }
        sb_puts(b, "</tr>\n");
    }
    sb_puts(b, "</tbody></table>\n");
}

static void write_csv(struct sbuf *b, struct agg *a) {
    sb_puts(b, "method,model,task,poison_ratio,metric,mean,sd,lo,hi,n_seeds,n\n");
    for (int mi = 0; mi < a->n_methods; mi++)
        for (int si = 0; si < a->n_settings; si++)
            for (int k = 0; k < a->n_metrics; k++) {
                struct cell_stats cs = cell_stats(a, mi, si, k);
                if (!cs.ok) continue;
                sb_csv(b, a->methods[mi]);
                sb_puts(b, ",");
                sb_csv(b, a->settings[si].model);
                sb_puts(b, ",");
                sb_csv(b, a->settings[si].task);
                sb_printf(b, ",%.17g,", a->settings[si].p);
                sb_csv(b, a->metrics[k]);
                sb_printf(b, ",%.17g,%.17g,%.17g,%.17g,%d,%lld\n", cs.s.mean, cs.s.sd, cs.lo, cs.hi, cs.s.n,
                          (long long)agg_cell(a, mi, si, k)->n);
            }
}

static void write_runs_table(struct sbuf *b, struct agg *a) {
    sb_puts(b, "<table class=\"runs\"><thead><tr><th>run</th><th>method</th><th>model</th><th>task</th>"
               "<th>poison ratio</th><th>seed</th><th>judge</th><th>decoding</th><th>folder</th></tr></thead><tbody>\n");
    for (int i = 0; i < a->n_runs; i++) {
        const struct uf_results *r = &a->runs[i].res;
        const char *cols[] = {r->run, r->method, r->model, r->task};
        sb_puts(b, "<tr>");
        for (size_t c = 0; c < UF_ARRAY_LEN(cols); c++) {
            sb_puts(b, "<td>");
            sb_html(b, cols[c]);
            sb_puts(b, "</td>");
        }
        sb_printf(b, "<td>%g</td><td>%lld</td><td>", r->poison_ratio, (long long)r->seed);
        sb_html(b, r->judge);
        sb_puts(b, "</td><td><code>");
        sb_html(b, r->decoding);
        sb_puts(b, "</code></td><td><code>");
        sb_html(b, a->runs[i].dir);
        sb_puts(b, "</code></td></tr>\n");
    }
    sb_puts(b, "</tbody></table>\n");
}

static void write_html(struct sbuf *b, struct agg *a, const char *title) {
    sb_puts(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    sb_html(b, title);
    sb_puts(b, "</title>\n<style>\n"
               "body{font-family:sans-serif;margin:24px;color:#222;background:#fff}\n"
               "table{border-collapse:collapse;margin:12px 0;font-size:13px}\n"
               "th,td{border:1px solid #bbb;padding:4px 8px;text-align:right;vertical-align:top}\n"
               "th{background:#f0f0f0}th.grp{text-align:center}th.method{text-align:left}\n"
               "td.best{background:#e6f4e6}td.na{color:#999;text-align:center}\n"
               ".ci{color:#666;font-size:11px}\n"
               "table.runs td{text-align:left}\n"
               "svg{margin:8px 16px 8px 0;border:1px solid #ddd;vertical-align:top}\n"
               "</style></head><body>\n<h1>");
    sb_html(b, title);
    sb_printf(b, "</h1>\n<p>%d run(s), %d method(s), %d setting(s). Cells: mean over seeds, &#177; sample "
                 "standard deviation over seeds when there are several, and in brackets the mean of the runs' "
                 "95%% intervals. &#9733; marks the best method per column (&#8595; lower is better, &#8593; "
                 "higher is better).</p>\n",
              a->n_runs, a->n_methods, a->n_settings);
    sb_puts(b, "<h2>Results</h2>\n");
    write_table(b, a);
    sb_puts(b, "<h2>Plots</h2>\n<div class=\"plots\">\n");
    for (int si = 0; si < a->n_settings; si++) {
        if (si > 0 && strcmp(a->settings[si].model, a->settings[si - 1].model) == 0 &&
            strcmp(a->settings[si].task, a->settings[si - 1].task) == 0)
            continue; /* one pair of plots per model/task */
        plot_asr_vs_poison(b, a, a->settings[si].model, a->settings[si].task);
        plot_asr_vs_utility(b, a, a->settings[si].model, a->settings[si].task);
    }
    sb_puts(b, "</div>\n");
    /* loss terms in first-seen order over runs */
    const char **terms = NULL;
    int nt = 0;
    for (int i = 0; i < a->n_runs; i++)
        for (int t = 0; t < a->runs[i].log.n_terms; t++)
            if (str_index(terms, nt, a->runs[i].log.terms[t]) < 0) {
                terms = uf_realloc(terms, (size_t)(nt + 1) * sizeof *terms);
                terms[nt++] = a->runs[i].log.terms[t];
            }
    if (nt > 0) {
        sb_puts(b, "<h2>Loss curves</h2>\n<div class=\"plots\">\n");
        for (int t = 0; t < nt; t++) plot_loss_term(b, a, terms[t]);
        sb_puts(b, "</div>\n");
    }
    free(terms);
    sb_puts(b, "<h2>Runs</h2>\n");
    write_runs_table(b, a);
    sb_puts(b, "<p class=\"ci\">Written by unforget " UF_VERSION ".</p>\n</body></html>\n");
}

/* ---- loading runs ---------------------------------------------------------------------------- */
static int name_cmp(const void *x, const void *y) { return strcmp(*(char *const *)x, *(char *const *)y); }

static void add_run_dir(char ***dirs, int *n, const char *d) {
    *dirs = uf_realloc(*dirs, (size_t)(*n + 1) * sizeof **dirs);
    (*dirs)[(*n)++] = uf_strdup(d);
}

/* Expands each argument to the run folders it stands for. */
static int expand_dirs(const char *const *in, int n_in, char ***out, int *n_out) {
    *out = NULL;
    *n_out = 0;
    for (int i = 0; i < n_in; i++) {
        char *rj = uf_sprintf("%s/results.json", in[i]);
        int has = uf_file_exists(rj);
        free(rj);
        if (has) {
            add_run_dir(out, n_out, in[i]);
            continue;
        }
        DIR *d = opendir(in[i]);
        if (!d) return uf_fail("%s: not a folder with results.json (a run folder, or a folder of run folders)", in[i]);
        char **subs = NULL;
        int ns = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char *sub = uf_sprintf("%s/%s/results.json", in[i], e->d_name);
            if (uf_file_exists(sub)) {
                subs = uf_realloc(subs, (size_t)(ns + 1) * sizeof *subs);
                subs[ns++] = uf_sprintf("%s/%s", in[i], e->d_name);
            }
            free(sub);
        }
        closedir(d);
        if (ns == 0) {
            free(subs);
            return uf_fail("%s: no results.json in it or in its sub-folders (has the eval stage run?)", in[i]);
        }
        qsort(subs, (size_t)ns, sizeof *subs, name_cmp);
        for (int k = 0; k < ns; k++) {
            add_run_dir(out, n_out, subs[k]);
            free(subs[k]);
        }
        free(subs);
    }
    return 0;
}

/* one row per run and metric, in the runs' order (runs sorted by folder within each argument) */
static void write_runs_csv(struct sbuf *b, const struct agg *a) {
    sb_puts(b, "run,method,model,task,poison_ratio,seed,metric,value,lo,hi,n,n_acts\n");
    for (int i = 0; i < a->n_runs; i++) {
        const struct uf_results *r = &a->runs[i].res;
        for (int k = 0; k < r->n_metrics; k++) {
            const struct uf_result_metric *m = &r->metrics[k];
            const char *text[] = {r->run, r->method, r->model, r->task};
            for (size_t t = 0; t < UF_ARRAY_LEN(text); t++) {
                sb_csv(b, text[t]);
                sb_puts(b, ",");
            }
            sb_printf(b, "%.17g,%lld,", r->poison_ratio, (long long)r->seed);
            sb_csv(b, m->name);
            sb_printf(b, ",%.17g,%.17g,%.17g,%lld,%lld\n", m->value, m->lo, m->hi, (long long)m->n,
                      (long long)m->n_acts);
        }
    }
}

int uf_report_write(const char *const *run_dirs, int n, const char *html_path, const char *csv_path,
                    const char *runs_csv_path, const char *title) {
    if (n < 1) return uf_fail("report: no run folders given");
    char **dirs;
    int nd;
    struct agg a = {0};
    int rc = 0;
    if (expand_dirs(run_dirs, n, &dirs, &nd)) {
        for (int i = 0; i < nd; i++) free(dirs[i]);
        free(dirs);
        return -1;
    }
    a.runs = uf_calloc((size_t)nd, sizeof *a.runs);
    for (int i = 0; i < nd; i++) a.runs[i].dir = dirs[i];
    a.n_runs = nd;
    for (int i = 0; i < nd; i++) {
        struct run_entry *r = &a.runs[i];
        char *rj = uf_sprintf("%s/results.json", r->dir), *mj = uf_sprintf("%s/metrics.jsonl", r->dir);
        rc = uf_results_read(&r->res, rj);
        if (!rc && uf_file_exists(mj)) rc = uf_metrics_log_read(&r->log, mj);
        free(rj);
        free(mj);
        if (rc) goto done;
    }
    agg_build(&a);
    struct sbuf html = {0};
    write_html(&html, &a, title ? title : "unforget report");
    rc = uf_file_write_atomic(html_path, html.p, html.n);
    free(html.p);
    if (!rc && csv_path) {
        struct sbuf csv = {0};
        write_csv(&csv, &a);
        rc = uf_file_write_atomic(csv_path, csv.p, csv.n);
        free(csv.p);
    }
    if (!rc && runs_csv_path) {
        struct sbuf csv = {0};
        write_runs_csv(&csv, &a);
        rc = uf_file_write_atomic(runs_csv_path, csv.p, csv.n);
        free(csv.p);
    }
    agg_free(&a);
done:
    for (int i = 0; i < a.n_runs; i++) {
        free(a.runs[i].dir);
        uf_results_free(&a.runs[i].res);
        uf_metrics_log_free(&a.runs[i].log);
    }
    free(a.runs);
    free(dirs);
    return rc;
}
