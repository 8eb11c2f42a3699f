/* Shared helpers of liquidflow's native kernels: vectorisable exp / sigmoid / tanh.
 *
 * float:  lf_expf is Cephes' expf scheme (range reduction by ln 2 in two parts, degree-6
 *         polynomial, 2^n by exponent bits): max relative error ~2 ulp, no calls, no branches,
 *         so gcc vectorises loops that use it (AVX2 / AVX-512 / NEON). Arguments are clamped to
 *         [-87.3, 88.7]; NaN input gives an unspecified finite value (the Python side checks
 *         inputs for NaN before any kernel runs).
 * double: lf_exp_d (libm-free, vectorisable) for the sequence kernels; lf_sigmoid / lf_tanh use libm.
 *
 * Kernel files define their bodies once over `REAL` and include them twice (see ltc.c):
 *     #define REAL float  / LF_EXP lf_expf / LF_SFX(name) name##_f32
 *     #define REAL double / LF_EXP exp    / LF_SFX(name) name##_f64
 */
#ifndef LF_COMMON_H
#define LF_COMMON_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* a helper of the hot loops: always inlined, so that a kernel compiles as if written out in place */
#define LF_HOT static inline __attribute__((always_inline))

static inline float lf_expf(float x) {
    x = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);
    /* n = round(x / ln 2) by the magic-number trick (vectorises; no rint call) */
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    float fn = (x * 1.44269504088896341f + magic) - magic;
    float r = x - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    int32_t n = (int32_t)fn;
    int32_t bits = (n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

static inline float lf_sigmoidf(float x) { return 1.0f / (1.0f + lf_expf(-x)); }

/* tanh: odd Taylor polynomial for |x| < 0.2 (relative error < 1e-9 there), else
 * sign(x) (1 - 2 / (exp(2|x|) + 1)); branch-free so loops vectorise */
static inline float lf_tanhf(float x) {
    float a = fabsf(x);
    float big = 1.0f - 2.0f / (lf_expf(2.0f * a) + 1.0f);
    float x2 = x * x;
    float small = x * (1.0f + x2 * (-0.333333333f + x2 * (0.133333333f + x2 * (-0.0539682540f + x2 * 0.0218694885f))));
    float r = a < 0.2f ? small : copysignf(big, x);
    return r;
}

/* double exp without libm calls, so that loops using it vectorise as they do for float (libm's exp is
 * a scalar call): Cody-Waite reduction x = n ln2 + r, |r| <= ln2 / 2, the Taylor polynomial of
 * degree 13 (truncation < 4e-18 relative), 2^n by exponent bits; arguments clamped to [-708, 709].
 * lf_exp_d_tail is the part shared with step.c's lf_step_exp (which sums the last terms in another
 * order): it returns the polynomial's tail q = sum_{k=2..13} r^(k-2) / k!, so that
 * exp(x) = 2^n (1 + r + r^2 q), with r in *rr and 2^n in *scale. */
static inline double lf_exp_d_tail(double x, double *rr, double *scale) {
    x = x < -708.0 ? -708.0 : (x > 709.0 ? 709.0 : x);
    const double magic = 6755399441055744.0; /* 1.5 * 2^52: round to nearest by the FPU */
    const double fn = (x * 1.4426950408889634074 + magic) - magic;
    const double r = (x - fn * 6.93147180369123816490e-01) - fn * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0; /* 1/13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    const int64_t bits = ((int64_t)fn + 1023) << 52;
    memcpy(scale, &bits, sizeof *scale);
    *rr = r;
    return p;
}

/* Max relative error 2.2e-16 against libm. Used by the float64 CfC and LTC sequence kernels. */
static inline double lf_exp_d(double x) {
    double r, scale, p = lf_exp_d_tail(x, &r, &scale);
    p = p * r + 1.0;
    p = p * r + 1.0;
    return p * scale;
}

static inline double lf_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static inline double lf_tanh(double x) { return tanh(x); }

#endif
