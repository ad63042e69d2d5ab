/* ref_ops_impl.h: the bodies of the reference ops (see ref_ops.h for the contract of each).
 * Deliberately included twice by ref_ops.c, with REAL = float / FN(x) = uf_ref_x and with
 * REAL = double / FN(x) = uf_ref_x_f64, so that the float oracle and the double reference are the
 * same code. No include guard on purpose. Every sum is a double; REAL is only the storage. */

void FN(embedding_forward)(REAL *out, const int32_t *tokens, const REAL *wte, int N, int D,
                           float scale) {
    for (int n = 0; n < N; n++)
        for (int d = 0; d < D; d++)
            out[(size_t)n * D + d] = (REAL)((double)scale * wte[(size_t)tokens[n] * D + d]);
}

void FN(embedding_backward)(REAL *dwte, const REAL *dout, const int32_t *tokens, int N, int D,
                            float scale) {
    /* one double sum per distinct token (first occurrence), then one add into dwte */
    for (int n = 0; n < N; n++) {
        int first = 1;
        for (int m = 0; m < n; m++)
            if (tokens[m] == tokens[n]) first = 0;
        if (!first) continue;
        for (int d = 0; d < D; d++) {
            double s = 0;
            for (int m = n; m < N; m++)
                if (tokens[m] == tokens[n]) s += dout[(size_t)m * D + d];
            dwte[(size_t)tokens[n] * D + d] += (REAL)((double)scale * s);
        }
    }
}

void FN(rmsnorm_forward)(REAL *y, REAL *rstd, const REAL *x, const REAL *w, int N, int D, float eps,
                         int plus_one) {
    for (int n = 0; n < N; n++) {
        const REAL *xr = x + (size_t)n * D;
        double ss = 0;
        for (int d = 0; d < D; d++) ss += (double)xr[d] * xr[d];
        double r = 1.0 / sqrt(ss / D + (double)eps);
        if (rstd) rstd[n] = (REAL)r;
        for (int d = 0; d < D; d++) {
            double wd = plus_one ? 1.0 + (double)w[d] : (double)w[d];
            y[(size_t)n * D + d] = (REAL)(xr[d] * r * wd);
        }
    }
}

void FN(rmsnorm_backward)(REAL *dx, REAL *dw, const REAL *dy, const REAL *x, const REAL *w, int N,
                          int D, float eps, int plus_one) {
    /* xhat = x r, y = xhat weff: dweff += dy xhat; dxhat = dy weff;
     * dx = r (dxhat - xhat mean(dxhat xhat)) */
    if (dw)
        for (int d = 0; d < D; d++) {
            double s = 0;
            for (int n = 0; n < N; n++) {
                const REAL *xr = x + (size_t)n * D;
                double ss = 0;
                for (int e = 0; e < D; e++) ss += (double)xr[e] * xr[e];
                double r = 1.0 / sqrt(ss / D + (double)eps);
                s += (double)dy[(size_t)n * D + d] * xr[d] * r;
            }
            dw[d] += (REAL)s;
        }
    if (dx)
        for (int n = 0; n < N; n++) {
            const REAL *xr = x + (size_t)n * D, *dyr = dy + (size_t)n * D;
            double ss = 0;
            for (int d = 0; d < D; d++) ss += (double)xr[d] * xr[d];
            double r = 1.0 / sqrt(ss / D + (double)eps);
            double dot = 0; /* sum_d dxhat xhat */
            for (int d = 0; d < D; d++) {
                double wd = plus_one ? 1.0 + (double)w[d] : (double)w[d];
                dot += dyr[d] * wd * (xr[d] * r);
            }
            for (int d = 0; d < D; d++) {
                double wd = plus_one ? 1.0 + (double)w[d] : (double)w[d];
                dx[(size_t)n * D + d] += (REAL)(r * (dyr[d] * wd - xr[d] * r * dot / D));
            }
        }
}

void FN(matmul_forward)(REAL *y, const REAL *x, const REAL *w, int N, int in, int out) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < out; o++) {
            const REAL *xr = x + (size_t)n * in, *wr = w + (size_t)o * in;
            double s = 0;
            for (int i = 0; i < in; i++) s += (double)xr[i] * wr[i];
            y[(size_t)n * out + o] = (REAL)s;
        }
}

void FN(matmul_backward)(REAL *dx, REAL *dw, const REAL *dy, const REAL *x, const REAL *w, int N,
                         int in, int out) {
    if (dx)
        for (int n = 0; n < N; n++)
            for (int i = 0; i < in; i++) {
                double s = 0;
                for (int o = 0; o < out; o++)
                    s += (double)dy[(size_t)n * out + o] * w[(size_t)o * in + i];
                dx[(size_t)n * in + i] += (REAL)s;
            }
    if (dw)
        for (int o = 0; o < out; o++)
            for (int i = 0; i < in; i++) {
                double s = 0;
                for (int n = 0; n < N; n++)
                    s += (double)dy[(size_t)n * out + o] * x[(size_t)n * in + i];
                dw[(size_t)o * in + i] += (REAL)s;
            }
}

/* u = x A^T in double: (N, r) */
static double *FN(lora_down)(const REAL *x, const REAL *a, int N, int in, int r) {
    double *u = uf_calloc((size_t)N * r + 1, sizeof *u);
    for (int n = 0; n < N; n++)
        for (int k = 0; k < r; k++) {
            double s = 0;
            for (int i = 0; i < in; i++) s += (double)x[(size_t)n * in + i] * a[(size_t)k * in + i];
            u[(size_t)n * r + k] = s;
        }
    return u;
}

void FN(lora_forward)(REAL *y, const REAL *x, const REAL *w, const REAL *a, const REAL *b, int N,
                      int in, int out, int r, float scale) {
    double *u = FN(lora_down)(x, a, N, in, r);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < out; o++) {
            double s = 0, t = 0;
            for (int i = 0; i < in; i++) s += (double)x[(size_t)n * in + i] * w[(size_t)o * in + i];
            for (int k = 0; k < r; k++) t += u[(size_t)n * r + k] * b[(size_t)o * r + k];
            y[(size_t)n * out + o] = (REAL)(s + (double)scale * t);
        }
    free(u);
}

void FN(lora_backward)(REAL *dx, REAL *dw, REAL *da, REAL *db, const REAL *dy, const REAL *x,
                       const REAL *w, const REAL *a, const REAL *b, int N, int in, int out, int r,
                       float scale) {
    double *u = FN(lora_down)(x, a, N, in, r);
    double *du = uf_calloc((size_t)N * r + 1, sizeof *du); /* (N, r) = scale dy B */
    for (int n = 0; n < N; n++)
        for (int k = 0; k < r; k++) {
            double s = 0;
            for (int o = 0; o < out; o++) s += (double)dy[(size_t)n * out + o] * b[(size_t)o * r + k];
            du[(size_t)n * r + k] = (double)scale * s;
        }
    if (db)
        for (int o = 0; o < out; o++)
            for (int k = 0; k < r; k++) {
                double s = 0;
                for (int n = 0; n < N; n++) s += (double)dy[(size_t)n * out + o] * u[(size_t)n * r + k];
                db[(size_t)o * r + k] += (REAL)((double)scale * s);
            }
    if (da)
        for (int k = 0; k < r; k++)
            for (int i = 0; i < in; i++) {
                double s = 0;
                for (int n = 0; n < N; n++) s += du[(size_t)n * r + k] * x[(size_t)n * in + i];
                da[(size_t)k * in + i] += (REAL)s;
            }
    if (dx)
        for (int n = 0; n < N; n++)
            for (int i = 0; i < in; i++) {
                double s = 0;
                for (int o = 0; o < out; o++)
                    s += (double)dy[(size_t)n * out + o] * w[(size_t)o * in + i];
                for (int k = 0; k < r; k++) s += du[(size_t)n * r + k] * a[(size_t)k * in + i];
                dx[(size_t)n * in + i] += (REAL)s;
            }
    FN(matmul_backward)(NULL, dw, dy, x, w, N, in, out);
    free(u);
    free(du);
}

void FN(rope_forward)(REAL *y, const REAL *x, const float *inv_freq, int N, int T, int nh, int hd) {
    int half = hd / 2;
    for (int n = 0; n < N; n++) {
        int t = n % T;
        for (int h = 0; h < nh; h++) {
            size_t base = ((size_t)n * nh + h) * hd;
            for (int i = 0; i < half; i++) {
                double ang = (double)t * (double)inv_freq[i], c = cos(ang), s = sin(ang);
                double x1 = x[base + i], x2 = x[base + i + half];
                y[base + i] = (REAL)(x1 * c - x2 * s);
                y[base + i + half] = (REAL)(x2 * c + x1 * s);
            }
        }
    }
}

void FN(rope_backward)(REAL *dx, const REAL *dy, const float *inv_freq, int N, int T, int nh,
                       int hd) {
    int half = hd / 2;
    for (int n = 0; n < N; n++) {
        int t = n % T;
        for (int h = 0; h < nh; h++) {
            size_t base = ((size_t)n * nh + h) * hd;
            for (int i = 0; i < half; i++) {
                double ang = (double)t * (double)inv_freq[i], c = cos(ang), s = sin(ang);
                double d1 = dy[base + i], d2 = dy[base + i + half];
                dx[base + i] += (REAL)(d1 * c + d2 * s);
                dx[base + i + half] += (REAL)(d2 * c - d1 * s);
            }
        }
    }
}

/* Probabilities of query (b, i, h) over keys [lo, i] (the visible range); p (T) filled for
 * j in [lo, i], returns lo, writes logsumexp to *lse_out. Requires i < lengths[b]. */
static int FN(attention_probs)(double *p, double *lse_out, const REAL *q, const REAL *k, int b,
                               int i, int h, int T, int H, int KV, int hd, int window) {
    int kvh = h / (H / KV);
    int lo = window > 0 ? UF_MAX(0, i - window + 1) : 0;
    double scale = 1.0 / sqrt((double)hd), mx = -INFINITY;
    const REAL *qr = q + (((size_t)b * T + i) * H + h) * hd;
    for (int j = lo; j <= i; j++) {
        const REAL *kr = k + (((size_t)b * T + j) * KV + kvh) * hd;
        double s = 0;
        for (int d = 0; d < hd; d++) s += (double)qr[d] * kr[d];
        p[j] = s * scale;
        mx = UF_MAX(mx, p[j]);
    }
    double sum = 0;
    for (int j = lo; j <= i; j++) sum += exp(p[j] - mx);
    for (int j = lo; j <= i; j++) p[j] = exp(p[j] - mx) / sum;
    *lse_out = mx + log(sum);
    return lo;
}

void FN(attention_forward)(REAL *o, REAL *lse, const REAL *q, const REAL *k, const REAL *v,
                           const int32_t *lengths, int B, int T, int H, int KV, int hd, int window) {
    double *p = uf_calloc((size_t)T, sizeof *p);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                REAL *orow = o + (((size_t)b * T + i) * H + h) * hd;
                if (i >= lengths[b]) { /* padded query row */
                    for (int d = 0; d < hd; d++) orow[d] = 0;
                    if (lse) lse[((size_t)b * H + h) * T + i] = 0;
                    continue;
                }
                double l;
                int lo = FN(attention_probs)(p, &l, q, k, b, i, h, T, H, KV, hd, window);
                int kvh = h / (H / KV);
                for (int d = 0; d < hd; d++) {
                    double s = 0;
                    for (int j = lo; j <= i; j++) s += p[j] * v[(((size_t)b * T + j) * KV + kvh) * hd + d];
                    orow[d] = (REAL)s;
                }
                if (lse) lse[((size_t)b * H + h) * T + i] = (REAL)l;
            }
    free(p);
}

void FN(attention_backward)(REAL *dq, REAL *dk, REAL *dv, const REAL *dout, const REAL *q,
                            const REAL *k, const REAL *v, const int32_t *lengths, int B, int T,
                            int H, int KV, int hd, int window) {
    double *p = uf_calloc((size_t)T, sizeof *p), *dp = uf_calloc((size_t)T, sizeof *dp);
    size_t kvn = (size_t)T * KV * hd;
    double *dk_acc = uf_calloc(kvn, sizeof *dk_acc), *dv_acc = uf_calloc(kvn, sizeof *dv_acc);
    double scale = 1.0 / sqrt((double)hd);
    for (int b = 0; b < B; b++) {
        memset(dk_acc, 0, kvn * sizeof *dk_acc);
        memset(dv_acc, 0, kvn * sizeof *dv_acc);
        for (int h = 0; h < H; h++)
            for (int i = 0; i < lengths[b] && i < T; i++) {
                double l;
                int lo = FN(attention_probs)(p, &l, q, k, b, i, h, T, H, KV, hd, window);
                int kvh = h / (H / KV);
                const REAL *dorow = dout + (((size_t)b * T + i) * H + h) * hd;
                const REAL *qr = q + (((size_t)b * T + i) * H + h) * hd;
                double pdp = 0;
                for (int j = lo; j <= i; j++) {
                    const REAL *vr = v + (((size_t)b * T + j) * KV + kvh) * hd;
                    double s = 0;
                    for (int d = 0; d < hd; d++) s += (double)dorow[d] * vr[d];
                    dp[j] = s;
                    pdp += p[j] * s;
                    for (int d = 0; d < hd; d++) dv_acc[((size_t)j * KV + kvh) * hd + d] += p[j] * dorow[d];
                }
                for (int d = 0; d < hd; d++) {
                    double s = 0;
                    for (int j = lo; j <= i; j++) {
                        double ds = p[j] * (dp[j] - pdp); /* d score */
                        s += ds * k[(((size_t)b * T + j) * KV + kvh) * hd + d];
                    }
                    dq[(((size_t)b * T + i) * H + h) * hd + d] += (REAL)(scale * s);
                }
                for (int j = lo; j <= i; j++) {
                    double ds = p[j] * (dp[j] - pdp);
                    for (int d = 0; d < hd; d++) dk_acc[((size_t)j * KV + kvh) * hd + d] += scale * ds * qr[d];
                }
            }
        for (size_t e = 0; e < kvn; e++) {
            dk[(size_t)b * kvn + e] += (REAL)dk_acc[e];
            dv[(size_t)b * kvn + e] += (REAL)dv_acc[e];
        }
    }
    free(p);
    free(dp);
    free(dk_acc);
    free(dv_acc);
}

void FN(gated_act_forward)(REAL *h, const REAL *g, const REAL *u, int64_t n, enum uf_act act) {
    for (int64_t i = 0; i < n; i++) h[i] = (REAL)(ref_act(g[i], act) * (double)u[i]);
}

void FN(gated_act_backward)(REAL *dg, REAL *du, const REAL *dh, const REAL *g, const REAL *u,
                            int64_t n, enum uf_act act) {
    for (int64_t i = 0; i < n; i++) {
        if (dg) dg[i] += (REAL)((double)dh[i] * u[i] * ref_act_grad(g[i], act));
        if (du) du[i] += (REAL)((double)dh[i] * ref_act(g[i], act));
    }
}

void FN(residual_forward)(REAL *out, const REAL *a, const REAL *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = (REAL)((double)a[i] + b[i]);
}

void FN(residual_backward)(REAL *da, REAL *db, const REAL *dout, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        if (da) da[i] += dout[i];
        if (db) db[i] += dout[i];
    }
}

static double FN(logsumexp)(const REAL *x, int V) {
    double mx = -INFINITY, s = 0;
    for (int v = 0; v < V; v++) mx = UF_MAX(mx, (double)x[v]);
    for (int v = 0; v < V; v++) s += exp((double)x[v] - mx);
    return mx + log(s);
}

double FN(cross_entropy_forward)(REAL *loss_rows, const REAL *logits, const int32_t *targets,
                                 const float *mask, int N, int V) {
    double total = 0, count = 0;
    for (int n = 0; n < N; n++) {
        double m = mask ? (double)mask[n] : 1.0, l = 0;
        if (m != 0) {
            const REAL *row = logits + (size_t)n * V;
            l = m * (FN(logsumexp)(row, V) - (double)row[targets[n]]);
        }
        if (loss_rows) loss_rows[n] = (REAL)l;
        total += l;
        count += m;
    }
    return count != 0 ? total / count : 0.0;
}

void FN(cross_entropy_backward)(REAL *dlogits, const REAL *logits, const int32_t *targets,
                                const float *mask, int N, int V, double scale) {
    for (int n = 0; n < N; n++) {
        double m = mask ? (double)mask[n] : 1.0;
        const REAL *row = logits + (size_t)n * V;
        REAL *drow = dlogits + (size_t)n * V;
        if (m == 0) {
            for (int v = 0; v < V; v++) drow[v] = 0;
            continue;
        }
        double lse = FN(logsumexp)(row, V);
        for (int v = 0; v < V; v++) {
            double pv = exp((double)row[v] - lse) - (v == targets[n] ? 1.0 : 0.0);
            drow[v] = (REAL)(scale * m * pv);
        }
    }
}
