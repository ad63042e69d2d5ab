/* clmath.cl: flat-vector math for continual-learning methods (runtime/ops/clmath.c):
 * quadratic penalties (EWC, L2-SP, Lisa's proximal term), A-GEM projection, and merges
 * (linear, task arithmetic, MagMax, TIES). Offsets are in elements. Deterministic: each
 * work-item owns its elements; reductions use the fixed-order kernels below. */

/* g += lambda * F * (p - p0); F == NULL-equivalent is signalled by use_f = 0 (F = 1).
 * part[i] (one per work-group) = sum over its elements of lambda/2 * F * (p - p0)^2 */
__kernel void uf_penalty_quad(__global float *g, ulong goff, __global const float *p, ulong poff,
                              __global const float *p0, ulong p0off, __global const float *F,
                              ulong foff, int use_f, float lambda, ulong n,
                              __global float *part, __local float *scratch) {
    size_t lid = get_local_id(0), ls = get_local_size(0), grp = get_group_id(0);
    size_t ng = get_num_groups(0);
    float acc = 0.0f;
    for (size_t i = grp * ls + lid; i < n; i += ng * ls) {
        float d = p[poff + i] - p0[p0off + i];
        float f = use_f ? F[foff + i] : 1.0f;
        g[goff + i] += lambda * f * d;
        acc += 0.5f * lambda * f * d * d;
    }
    scratch[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (size_t s = ls / 2; s > 0; s >>= 1) {
        if (lid < s) scratch[lid] += scratch[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) part[grp] = scratch[0];
}

/* part[g] = sum over the work-group's elements of x*y */
__kernel void uf_dot_partial(__global const float *x, ulong xoff, __global const float *y,
                             ulong yoff, ulong n, __global float *part, __local float *scratch) {
    size_t lid = get_local_id(0), ls = get_local_size(0), grp = get_group_id(0);
    size_t ng = get_num_groups(0);
    float acc = 0.0f;
    for (size_t i = grp * ls + lid; i < n; i += ng * ls) acc += x[xoff + i] * y[yoff + i];
    scratch[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (size_t s = ls / 2; s > 0; s >>= 1) {
        if (lid < s) scratch[lid] += scratch[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) part[grp] = scratch[0];
}

/* out[slot] (= or +=) sum(part[0..np)) in a fixed order, by one work-item. */
__kernel void uf_sum_parts(__global const float *part, uint np, __global float *out, uint slot,
                           int accumulate) {
    if (get_global_id(0) != 0) return;
    float s = 0.0f;
    for (uint i = 0; i < np; i++) s += part[i];
    out[slot] = accumulate ? out[slot] + s : s;
}

/* A-GEM: dots[0] = g.g_ref, dots[1] = g_ref.g_ref; if dots[0] < 0: g -= dots[0]/dots[1] g_ref */
__kernel void uf_agem_project(__global float *g, ulong goff, __global const float *gr, ulong groff,
                              __global const float *dots, ulong n) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    float d = dots[0], rr = dots[1];
    if (d < 0.0f && rr > 0.0f) g[goff + i] -= (d / rr) * gr[groff + i];
}

/* out = a*x + b*y + c*z (the linear merges: linear, task arithmetic) */
__kernel void uf_lincomb3(__global float *out, ulong ooff, float a, __global const float *x,
                          ulong xoff, float b, __global const float *y, ulong yoff, float c,
                          __global const float *z, ulong zoff, ulong n) {
    size_t i = get_global_id(0);
    if (i < n) out[ooff + i] = a * x[xoff + i] + b * y[yoff + i] + c * z[zoff + i];
}

/* MagMax: out = base + lambda * (|t1| >= |t2| ? t1 : t2), t_k = model_k - base */
__kernel void uf_magmax(__global float *out, ulong ooff, __global const float *base, ulong boff,
                        __global const float *m1, ulong m1off, __global const float *m2,
                        ulong m2off, float lambda, ulong n) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    float b = base[boff + i], t1 = m1[m1off + i] - b, t2 = m2[m2off + i] - b;
    out[ooff + i] = b + lambda * (fabs(t1) >= fabs(t2) ? t1 : t2);
}

/* Task arithmetic over tau_s = safe - base and tau_u = ft - safe:
 * out = base + ls tau_s + lu tau_u, written as safe + (ls - 1) tau_s + lu tau_u so that
 * ls = 1 with ft = safe (tau_u = 0) gives safe bit for bit. */
__kernel void uf_task_arith(__global float *out, ulong ooff, __global const float *base, ulong boff,
                            __global const float *safe, ulong soff, __global const float *ft,
                            ulong foff, float ls, float lu, ulong n) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    float s = safe[soff + i], ts = s - base[boff + i], tu = ft[foff + i] - s;
    out[ooff + i] = s + ((ls - 1.0f) * ts + lu * tu);
}

/* TIES over tau_s = safe - base and tau_u = ft - safe: trim (|tau_k| < thr_k -> 0), scale
 * (t_k = l_k tau_k), elect the sign of t_s + t_u, disjoint mean m of the kept entries agreeing
 * with it; out = base + m, written as safe + (m - tau_s) so that tau_u = 0 with nothing trimmed
 * from tau_s and ls = 1 gives safe bit for bit. */
__kernel void uf_ties(__global float *out, ulong ooff, __global const float *base, ulong boff,
                      __global const float *safe, ulong soff, __global const float *ft, ulong foff,
                      float thr_s, float thr_u, float ls, float lu, ulong n) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    float sv = safe[soff + i], ts0 = sv - base[boff + i], tu0 = ft[foff + i] - sv;
    float t1 = fabs(ts0) < thr_s ? 0.0f : ls * ts0;
    float t2 = fabs(tu0) < thr_u ? 0.0f : lu * tu0;
    float s = t1 + t2;
    float sum = 0.0f, cnt = 0.0f;
    if (s != 0.0f) {
        if (t1 != 0.0f && (t1 > 0.0f) == (s > 0.0f)) sum += t1, cnt += 1.0f;
        if (t2 != 0.0f && (t2 > 0.0f) == (s > 0.0f)) sum += t2, cnt += 1.0f;
    }
    float m = cnt > 0.0f ? sum / cnt : 0.0f;
    out[ooff + i] = sv + (m - ts0);
}

/* Squared-difference distillation (DER on logits, LwF on hidden states), rows of width W:
 * sel(i) = mask[row] * (thr == NULL-equivalent (use_thr = 0) or y[i] >= thr[row]);
 * g[i] = 2 scale sel(i) (x[i] - y[i]); part[grp] = sum over its elements of scale sel (x - y)^2. */
__kernel void uf_sqdiff(__global float *g, ulong goff, __global const float *x, ulong xoff,
                        __global const float *y, ulong yoff, __global const float *mask,
                        ulong moff, __global const float *thr, ulong toff, int use_thr, ulong W,
                        float scale, ulong n, __global float *part, __local float *scratch) {
    size_t lid = get_local_id(0), ls = get_local_size(0), grp = get_group_id(0);
    size_t ng = get_num_groups(0);
    float acc = 0.0f;
    for (size_t i = grp * ls + lid; i < n; i += ng * ls) {
        size_t row = i / W;
        float yi = y[yoff + i];
        float sel = mask[moff + row];
        if (use_thr && yi < thr[toff + row]) sel = 0.0f;
        float d = x[xoff + i] - yi;
        g[goff + i] = 2.0f * scale * sel * d;
        acc += scale * sel * d * d;
    }
    scratch[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (size_t s = ls / 2; s > 0; s >>= 1) {
        if (lid < s) scratch[lid] += scratch[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) part[grp] = scratch[0];
}

/* thr[row] = the k-th largest value of x[row, 0..W) counting ties (entries >= thr are the top
 * k, more when tied); one work-item per row, k passes over the row. */
__kernel void uf_row_topk_thr(__global const float *x, ulong xoff, ulong W, uint k, ulong rows,
                              __global float *thr, ulong toff) {
    size_t r = get_global_id(0);
    if (r >= rows) return;
    __global const float *row = x + xoff + r * W;
    float cur = INFINITY;
    uint have = 0;
    while (have < k) {
        float best = -INFINITY;
        uint cnt = 0;
        for (size_t j = 0; j < W; j++) {
            float v = row[j];
            if (v < cur) {
                if (v > best) best = v, cnt = 1;
                else if (v == best) cnt++;
            }
        }
        if (cnt == 0) break;
        cur = best;
        have += cnt;
    }
    thr[toff + r] = cur;
}

/* acc += scale * g^2 (diagonal Fisher accumulation); scale may be 0 to skip */
__kernel void uf_sq_accum(__global float *acc, ulong aoff, __global const float *g, ulong goff,
                          float scale, ulong n) {
    size_t i = get_global_id(0);
    if (i < n) acc[aoff + i] += scale * g[goff + i] * g[goff + i];
}

/* A standard normal for element i under seed: Box-Muller on two counter-based draws,
 * u1 = ((h(2i) >> 8) + 1) 2^-24 in (0, 1], u2 = (h(2i+1) >> 8) 2^-24 in [0, 1),
 * xi = sqrt(-2 ln u1) cos(2 pi u2). The host has the same (uf_clmath_normal). */
float uf_normal_at(ulong seed, ulong i) {
    float u1 = (float)((uf_hash_u32(seed, 2 * i) >> 8) + 1u) * 5.9604644775390625e-8f;
    float u2 = (float)(uf_hash_u32(seed, 2 * i + 1) >> 8) * 5.9604644775390625e-8f;
    return sqrt(-2.0f * log(u1)) * cos(6.283185307179586f * u2);
}

/* Refresh's unlearning step on one parameter tensor of n elements, element base + i of the
 * trainable vector; nn[nnoff..+2) = {p.p, g.g} over the tensor:
 *   p += delta / (1 + c F) * (sqrt(p.p) / (sqrt(g.g) + 1e-20) g + sigma xi_{base + i}) */
__kernel void uf_refresh_unlearn(__global float *p, ulong poff, __global const float *g, ulong goff,
                                 __global const float *F, ulong foff, __global const float *nn,
                                 ulong nnoff, float delta, float c, float sigma, ulong seed,
                                 ulong base, ulong n) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    float rho = sqrt(nn[nnoff]) / (sqrt(nn[nnoff + 1]) + 1e-20f);
    float xi = sigma != 0.0f ? uf_normal_at(seed, base + i) : 0.0f;
    p[poff + i] += delta / (1.0f + c * F[foff + i]) * (rho * g[goff + i] + sigma * xi);
}

/* Temperature distillation (LwF on logits), one work-item per row of width W (no barriers):
 * p = softmax(x / T), q = softmax(y / T) (invT = 1 / T); g = gs mask[row] (p - q) (WRITTEN);
 * part[row] = vs mask[row] KL(q || p), KL = sum q (log q - log p). With gs = scale T and
 * vs = scale T^2 these are the gradient (with respect to x) and the value of scale T^2 KL.
 * exp/log, not native_: the KL of close rows is a small difference. Rows with mask 0 write
 * g = 0 and part = 0. Three passes over the row (max, sums, gradient and KL). */
__kernel void uf_kl_temp(__global float *g, ulong goff, __global const float *x, ulong xoff,
                         __global const float *y, ulong yoff, __global const float *mask,
                         ulong moff, ulong W, float invT, float gs, float vs, ulong rows,
                         __global float *part) {
    size_t r = get_global_id(0);
    if (r >= rows) return;
    __global const float *xr = x + xoff + r * W, *yr = y + yoff + r * W;
    __global float *gr = g + goff + r * W;
    float mk = mask[moff + r];
    if (mk == 0.0f) {
        for (size_t j = 0; j < W; j++) gr[j] = 0.0f;
        part[r] = 0.0f;
        return;
    }
    float mx = -INFINITY, my = -INFINITY;
    for (size_t j = 0; j < W; j++) mx = fmax(mx, xr[j]), my = fmax(my, yr[j]);
    float sx = 0.0f, sy = 0.0f;
    for (size_t j = 0; j < W; j++) sx += exp((xr[j] - mx) * invT), sy += exp((yr[j] - my) * invT);
    float lx = log(sx), ly = log(sy), kl = 0.0f;
    for (size_t j = 0; j < W; j++) {
        float lp = (xr[j] - mx) * invT - lx, lq = (yr[j] - my) * invT - ly, q = exp(lq);
        gr[j] = gs * mk * (exp(lp) - q);
        kl += q * (lq - lp);
    }
    part[r] = vs * mk * kl;
}
