/* liquidflow native kernels: one streaming step (`layer.step(input, hx, dt)` with gradients off)
 * of an LTC layer (semi-implicit solver) or a CfC layer (dense with backbone, or wired), from the
 * layer's raw parameters read in place on every call. The bodies are in step_impl.h, compiled once
 * for float (vectorisable lf_* functions) and once for double (libm, for the float64 tests).
 *
 * Batch rows are computed one after another: the streaming case is batch 1, where one call is a
 * few µs and threads would cost more than they save. */
#include <omp.h>
#include <stdlib.h>

#include "lf_abi.h"
#include "lf_common.h"

/* every field of the structs of this library's calls, for the check of liquidflow._ops.native_abi */
static const lf_abi_field lf_step_abi_fields[] = {
    LF_ABI_STRUCT(lf_step_linear),
    LF_ABI_FIELD(lf_step_linear, weight),
    LF_ABI_FIELD(lf_step_linear, bias),
    LF_ABI_STRUCT(lf_step_cfc_layer),
    LF_ABI_FIELD(lf_step_cfc_layer, in_size),
    LF_ABI_FIELD(lf_step_cfc_layer, hidden),
    LF_ABI_FIELD(lf_step_cfc_layer, backbone_layers),
    LF_ABI_FIELD(lf_step_cfc_layer, backbone_units),
    LF_ABI_FIELD(lf_step_cfc_layer, backbone),
    LF_ABI_FIELD(lf_step_cfc_layer, f1),
    LF_ABI_FIELD(lf_step_cfc_layer, f2),
    LF_ABI_FIELD(lf_step_cfc_layer, time_a),
    LF_ABI_FIELD(lf_step_cfc_layer, time_b),
    LF_ABI_FIELD(lf_step_cfc_layer, w_tau),
    LF_ABI_FIELD(lf_step_cfc_layer, a),
    LF_ABI_FIELD(lf_step_cfc_layer, sparsity_mask),
    LF_ABI_STRUCT(lf_step_cfc_plan),
    LF_ABI_FIELD(lf_step_cfc_plan, layers),
    LF_ABI_FIELD(lf_step_cfc_plan, activation),
    LF_ABI_FIELD(lf_step_cfc_plan, mode),
    LF_ABI_FIELD(lf_step_cfc_plan, proj),
    LF_ABI_FIELD(lf_step_cfc_plan, state_size),
    LF_ABI_FIELD(lf_step_cfc_plan, in_size),
    LF_ABI_FIELD(lf_step_cfc_plan, layer),
    LF_ABI_FIELD(lf_step_cfc_plan, fc),
    LF_ABI_STRUCT(lf_step_ltc_plan),
    LF_ABI_FIELD(lf_step_ltc_plan, state_size),
    LF_ABI_FIELD(lf_step_ltc_plan, in_size),
    LF_ABI_FIELD(lf_step_ltc_plan, motor_size),
    LF_ABI_FIELD(lf_step_ltc_plan, unfolds),
    LF_ABI_FIELD(lf_step_ltc_plan, input_mapping),
    LF_ABI_FIELD(lf_step_ltc_plan, output_mapping),
    LF_ABI_FIELD(lf_step_ltc_plan, proj),
    LF_ABI_FIELD(lf_step_ltc_plan, epsilon),
    LF_ABI_FIELD(lf_step_ltc_plan, gleak_raw),
    LF_ABI_FIELD(lf_step_ltc_plan, vleak),
    LF_ABI_FIELD(lf_step_ltc_plan, cm_raw),
    LF_ABI_FIELD(lf_step_ltc_plan, w_raw),
    LF_ABI_FIELD(lf_step_ltc_plan, sigma),
    LF_ABI_FIELD(lf_step_ltc_plan, mu),
    LF_ABI_FIELD(lf_step_ltc_plan, erev),
    LF_ABI_FIELD(lf_step_ltc_plan, sensory_w_raw),
    LF_ABI_FIELD(lf_step_ltc_plan, sensory_sigma),
    LF_ABI_FIELD(lf_step_ltc_plan, sensory_mu),
    LF_ABI_FIELD(lf_step_ltc_plan, sensory_erev),
    LF_ABI_FIELD(lf_step_ltc_plan, sparsity_mask),
    LF_ABI_FIELD(lf_step_ltc_plan, sensory_sparsity_mask),
    LF_ABI_FIELD(lf_step_ltc_plan, input_w),
    LF_ABI_FIELD(lf_step_ltc_plan, input_b),
    LF_ABI_FIELD(lf_step_ltc_plan, output_w),
    LF_ABI_FIELD(lf_step_ltc_plan, output_b),
    LF_ABI_FIELD(lf_step_ltc_plan, fc),
};
/* lf_step_abi_version, lf_step_struct_size, lf_step_field_offset */
LF_ABI_EXPORTS(step, LF_STEP_ABI_VERSION, lf_step_abi_fields)

/* a parameter of the plan structs (untyped pointers, see lf_abi.h) as the REAL of the kernel */
#define LF_PTR(v) ((const REAL *)(v))
/* scratch up to this many values lives on the stack, larger on the heap */
#define LF_STEP_STACK 4096
/* CfC batch rows per block (lf_st_matrows has a kernel for exactly 4) */
#define LF_STEP_ROWS 4

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

/* double exp, vectorisable: lf_common.h's range reduction and Taylor polynomial (degree 13), its
 * last terms summed as r^2 q + r + 1. Arguments are clamped to [-708, 709] (below, 3e-308 stands for
 * 0: harmless in the sigmoids). */
static inline double lf_step_exp(double x) {
    double r, scale;
    const double q = lf_exp_d_tail(x, &r, &scale);
    const double y = (q * r) * r + r + 1.0;
    return y * scale;
}

static inline double lf_step_sigmoid(double x) { return 1.0 / (1.0 + lf_step_exp(-x)); }

/* log(1 + e) for e in [0, 1], vectorisable: u = 1 + e = 2^k m with m in [sqrt(1/2), sqrt(2)),
 * log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172, by its odd series to s^23 (error
 * < 1e-18); the rounding of u is undone by e / (u - 1) as in the float version. */
static inline double lf_step_log1p(double e) {
    double u = 1.0 + e;
    double d = u - 1.0;
    int big = u > 1.4142135623730951;
    double m = big ? 0.5 * u : u;
    double k = big ? 1.0 : 0.0;
    double s = (m - 1.0) / (m + 1.0);
    double s2 = s * s;
    double q = 1.0 / 23.0;
    q = q * s2 + 1.0 / 21.0;
    q = q * s2 + 1.0 / 19.0;
    q = q * s2 + 1.0 / 17.0;
    q = q * s2 + 1.0 / 15.0;
    q = q * s2 + 1.0 / 13.0;
    q = q * s2 + 1.0 / 11.0;
    q = q * s2 + 1.0 / 9.0;
    q = q * s2 + 1.0 / 7.0;
    q = q * s2 + 1.0 / 5.0;
    q = q * s2 + 1.0 / 3.0;
    double lm = 2.0 * s + 2.0 * s * s2 * q;
    double lu = k * 6.93147180369123816490e-01 + (lm + k * 1.90821492927058770002e-10);
    return d == 0.0 ? e : lu * (e / d);
}

static inline double lf_step_softplus(double x) {
    double r = (x > 0.0 ? x : 0.0) + lf_step_log1p(lf_step_exp(-fabs(x)));
    return x > 20.0 ? x : r;
}

#define REAL float
#define LF_SFX(name) name##_f32
#define LF_EXP lf_expf
#define LF_SIG lf_sigmoidf
#define LF_TANH lf_tanhf
#define LF_SOFTPLUS lf_step_softplusf
#define LF_ERF erff
#define LF_ABS fabsf
#include "step_impl.h" /* undefines the macros above at its end */

#define REAL double
#define LF_SFX(name) name##_f64
#define LF_EXP lf_step_exp
#define LF_SIG lf_step_sigmoid
#define LF_TANH lf_tanh
#define LF_SOFTPLUS lf_step_softplus
#define LF_ERF erf
#define LF_ABS fabs
#include "step_impl.h" /* undefines the macros above at its end */

/* for the tests of the helpers above */
float lf_step_softplus_check_f32(float x) { return lf_step_softplusf(x); }
double lf_step_softplus_check_f64(double x) { return lf_step_softplus(x); }
double lf_step_exp_check_f64(double x) { return lf_step_exp(x); }
