/* ref_ops.c: the reference ops (see ref_ops.h). The op bodies live in ref_ops_impl.h, compiled
 * here twice: once on float arrays (the oracle of the OpenCL kernels), once on double arrays. */
#include "ref/ref_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

void uf_ref_rope_inv_freq(const struct uf_model_config *c, float *inv_freq) {
    int half = c->head_dim / 2;
    const double pi = 3.14159265358979323846;
    for (int i = 0; i < half; i++) {
        double f = pow((double)c->rope_theta, -(2.0 * i) / c->head_dim);
        if (c->rope_factor > 0) { /* llama3: Hugging Face _compute_llama3_parameters */
            double factor = c->rope_factor, lo_f = c->rope_low_freq_factor,
                   hi_f = c->rope_high_freq_factor, old = c->rope_original_max_pos;
            double wavelen = 2 * pi / f, lo_wavelen = old / lo_f, hi_wavelen = old / hi_f;
            if (wavelen > lo_wavelen) {
                f = f / factor;
            } else if (wavelen >= hi_wavelen) { /* medium band: smooth interpolation */
                double s = (old / wavelen - lo_f) / (hi_f - lo_f);
                f = (1 - s) * f / factor + s * f;
            }
        }
        inv_freq[i] = (float)f;
    }
}

void uf_ref_adamw(float *p, const float *g, float *m, float *v, int64_t n, double gnorm_sq, float lr,
                  float beta1, float beta2, float eps, float weight_decay, float max_norm,
                  float grad_scale, int step) {
    double clip = max_norm > 0 ? fmin(1.0, (double)max_norm / (sqrt(gnorm_sq) + 1e-6)) : 1.0;
    double b1 = beta1, b2 = beta2, bc1 = 1 - pow(b1, step), bc2 = 1 - pow(b2, step);
    for (int64_t i = 0; i < n; i++) {
        double gi = clip * (double)grad_scale * g[i];
        double mi = b1 * m[i] + (1 - b1) * gi, vi = b2 * v[i] + (1 - b2) * gi * gi;
        double upd = (mi / bc1) / (sqrt(vi / bc2) + (double)eps) + (double)weight_decay * p[i];
        m[i] = (float)mi;
        v[i] = (float)vi;
        p[i] = (float)((double)p[i] - (double)lr * upd);
    }
}

/* activation and its derivative, in double */
static double ref_act(double g, enum uf_act act) {
    if (act == UF_ACT_SILU) return g / (1 + exp(-g));
    const double c = 0.7978845608028654; /* sqrt(2 / pi) */
    return 0.5 * g * (1 + tanh(c * (g + 0.044715 * g * g * g)));
}

static double ref_act_grad(double g, enum uf_act act) {
    if (act == UF_ACT_SILU) {
        double s = 1 / (1 + exp(-g));
        return s * (1 + g * (1 - s));
    }
    const double c = 0.7978845608028654;
    double t = tanh(c * (g + 0.044715 * g * g * g));
    return 0.5 * (1 + t) + 0.5 * g * (1 - t * t) * c * (1 + 3 * 0.044715 * g * g);
}

#define REAL float
#define FN(name) uf_ref_##name
#include "ref/ref_ops_impl.h"
#undef REAL
#undef FN

#define REAL double
#define FN(name) uf_ref_##name##_f64
#include "ref/ref_ops_impl.h"
#undef REAL
#undef FN
