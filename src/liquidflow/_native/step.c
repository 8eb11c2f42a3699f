/* liquidflow native kernels: one streaming step (`layer.step(input, hx, dt)` with gradients off)
 * of an LTC layer (semi-implicit solver) or a CfC layer (dense with backbone, or wired), from the
 * layer's raw parameters read in place on every call. The bodies are in step_impl.h, compiled once
 * for float (vectorisable lf_* functions) and once for double (libm, for the float64 tests).
 *
 * Batch rows are computed one after another: the streaming case is batch 1, where one call is a
 * few µs and threads would cost more than they save. */
#include <stdlib.h>

#include "lf_common.h"

int lf_step_version(void) { return 1; }

/* log(1 + e) for e in [0, 1], vectorisable (no calls, no branches). log(u), u = 1 + e in [1, 2],
 * by Cephes' logf polynomial on [sqrt(1/2), sqrt(2)); the rounding of u is undone by the factor
 * e / (u - 1) (Goldberg's log1p trick), so tiny e keep full relative precision. */
static inline float lf_step_log1pf(float e) {
    float u = 1.0f + e;
    float d = u - 1.0f;
    int big = u > 1.41421356f;
    float m = big ? 0.5f * u : u;
    float k = big ? 1.0f : 0.0f;
    float f = m - 1.0f;
    float z = f * f;
    float p = 7.0376836292e-2f;
    p = p * f - 1.1514610310e-1f;
    p = p * f + 1.1676998740e-1f;
    p = p * f - 1.2420140846e-1f;
    p = p * f + 1.4249322787e-1f;
    p = p * f - 1.6668057665e-1f;
    p = p * f + 2.0000714765e-1f;
    p = p * f - 2.4999993993e-1f;
    p = p * f + 3.3333331174e-1f;
    float y = p * f * z;
    y += -2.12194440e-4f * k;
    y += -0.5f * z;
    float lu = f + y + 0.693359375f * k;
    return d == 0.0f ? e : lu * (e / d);
}

/* softplus as torch computes it (beta 1, threshold 20): x above 20, else log(1 + exp(x)),
 * here as max(x, 0) + log1p(exp(-|x|)) (the same value, no overflow) */
static inline float lf_step_softplusf(float x) {
    float r = (x > 0.0f ? x : 0.0f) + lf_step_log1pf(lf_expf(-fabsf(x)));
    return x > 20.0f ? x : r;
}

static inline double lf_step_softplus(double x) { return x > 20.0 ? x : log1p(exp(x)); }

#define REAL float
#define LF_SFX(name) name##_f32
#define LF_EXP lf_expf
#define LF_SIG lf_sigmoidf
#define LF_TANH lf_tanhf
#define LF_SOFTPLUS lf_step_softplusf
#define LF_ERF erff
#define LF_ABS fabsf
#include "step_impl.h"
#undef REAL
#undef LF_SFX
#undef LF_EXP
#undef LF_SIG
#undef LF_TANH
#undef LF_SOFTPLUS
#undef LF_ERF
#undef LF_ABS

#define REAL double
#define LF_SFX(name) name##_f64
#define LF_EXP exp
#define LF_SIG lf_sigmoid
#define LF_TANH lf_tanh
#define LF_SOFTPLUS lf_step_softplus
#define LF_ERF erf
#define LF_ABS fabs
#include "step_impl.h"
#undef REAL
#undef LF_SFX
#undef LF_EXP
#undef LF_SIG
#undef LF_TANH
#undef LF_SOFTPLUS
#undef LF_ERF
#undef LF_ABS

/* for the tests of the float helpers above */
float lf_step_softplus_check_f32(float x) { return lf_step_softplusf(x); }
