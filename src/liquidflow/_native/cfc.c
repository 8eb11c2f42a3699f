/* liquidflow native kernels: CfC chains (one layer with a backbone, or the wired layers of an NCP)
 * over a whole sequence, forward and backward; called by liquidflow/_ops/native_cfc.py.
 *
 * Arguments: `layers`, L structs lf_cfc_layer (lf_abi.h: sizes, options, weights read in place with
 * their strides, the buffers saved for the backward pass and its outputs), then
 *   P (T, B, K_0) layer 0's first map over the inputs (bias included), ts (T, B) elapsed times,
 *   keep (T, B) uint8 or NULL, h0 (B, N), S (T, B, N) the states, all contiguous, and the mixed-memory
 *   LSTM (lf_cfc_lstm, lstm_impl.h) or NULL.
 * Weight gradients: each thread sums over its rows and every step, then the threads' sums are added. */
#include <stdint.h>
#include <stdlib.h>

#include "lf_abi.h"
#include "lf_common.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define LF_MAXL 16
#ifdef __AVX512F__
#define LF_VBYTES 64
#else
#define LF_VBYTES 32
#endif

static inline int64_t lf_roundup(int64_t n, int64_t k) { return (n + k - 1) / k * k; }

static void *lf_alloc(size_t bytes) {
    size_t n = (size_t)lf_roundup((int64_t)(bytes ? bytes : 1), 64);
    return aligned_alloc(64, n);
}

static void lf_free(void *p) { free(p); }

/* threads for B rows: at least 4 rows (one register tile) per thread */
static int lf_threads(int64_t B, int64_t nt) {
    int64_t blocks = (B + 3) / 4;
    if (nt > blocks) nt = blocks;
    return nt < 1 ? 1 : (int)nt;
}

/* this thread's rows [b0, b1) of B, split in whole tiles of 4; returns the thread's number */
static int lf_rows(int64_t B, int64_t *b0, int64_t *b1) {
#ifdef _OPENMP
    int64_t tid = omp_get_thread_num(), nth = omp_get_num_threads();
#else
    int64_t tid = 0, nth = 1;
#endif
    int64_t blocks = (B + 3) / 4;
    int64_t lo = 4 * (blocks * tid / nth), hi = 4 * (blocks * (tid + 1) / nth);
    *b0 = lo < B ? lo : B;
    *b1 = hi < B ? hi : B;
    return (int)tid;
}

/* every field of the structs of this library's calls, for the check of liquidflow._ops.native_abi */
static const lf_abi_field lf_cfc_abi_fields[] = {
    LF_ABI_STRUCT(lf_strided),
    LF_ABI_FIELD(lf_strided, data),
    LF_ABI_FIELD(lf_strided, stride0),
    LF_ABI_FIELD(lf_strided, stride1),
    LF_ABI_STRUCT(lf_cfc_layer),
    LF_ABI_FIELD(lf_cfc_layer, hidden),
    LF_ABI_FIELD(lf_cfc_layer, width),
    LF_ABI_FIELD(lf_cfc_layer, in_size),
    LF_ABI_FIELD(lf_cfc_layer, backbone),
    LF_ABI_FIELD(lf_cfc_layer, mode),
    LF_ABI_FIELD(lf_cfc_layer, offset),
    LF_ABI_FIELD(lf_cfc_layer, activation),
    LF_ABI_FIELD(lf_cfc_layer, head_activation),
    LF_ABI_FIELD(lf_cfc_layer, wx_t),
    LF_ABI_FIELD(lf_cfc_layer, wh_t),
    LF_ABI_FIELD(lf_cfc_layer, b),
    LF_ABI_FIELD(lf_cfc_layer, hw_t),
    LF_ABI_FIELD(lf_cfc_layer, hb),
    LF_ABI_FIELD(lf_cfc_layer, a),
    LF_ABI_FIELD(lf_cfc_layer, w_tau),
    LF_ABI_FIELD(lf_cfc_layer, deep),
    LF_ABI_FIELD(lf_cfc_layer, drop),
    LF_ABI_FIELD(lf_cfc_layer, z),
    LF_ABI_FIELD(lf_cfc_layer, f),
    LF_ABI_FIELD(lf_cfc_layer, g),
    LF_ABI_FIELD(lf_cfc_layer, zd),
    LF_ABI_FIELD(lf_cfc_layer, grad_u),
    LF_ABI_FIELD(lf_cfc_layer, grad_wx_t),
    LF_ABI_FIELD(lf_cfc_layer, grad_wh_t),
    LF_ABI_FIELD(lf_cfc_layer, grad_b),
    LF_ABI_FIELD(lf_cfc_layer, grad_hw_t),
    LF_ABI_FIELD(lf_cfc_layer, grad_hb),
    LF_ABI_FIELD(lf_cfc_layer, grad_a),
    LF_ABI_FIELD(lf_cfc_layer, grad_w_tau),
    LF_ABI_STRUCT(lf_cfc_deep),
    LF_ABI_FIELD(lf_cfc_deep, w_t),
    LF_ABI_FIELD(lf_cfc_deep, b),
    LF_ABI_FIELD(lf_cfc_deep, drop),
    LF_ABI_FIELD(lf_cfc_deep, z),
    LF_ABI_FIELD(lf_cfc_deep, zd),
    LF_ABI_FIELD(lf_cfc_deep, grad_w_t),
    LF_ABI_FIELD(lf_cfc_deep, grad_b),
    LF_ABI_STRUCT(lf_cfc_lstm),
    LF_ABI_FIELD(lf_cfc_lstm, size),
    LF_ABI_FIELD(lf_cfc_lstm, r_t),
    LF_ABI_FIELD(lf_cfc_lstm, pre),
    LF_ABI_FIELD(lf_cfc_lstm, c0),
    LF_ABI_FIELD(lf_cfc_lstm, c),
    LF_ABI_FIELD(lf_cfc_lstm, hl),
    LF_ABI_FIELD(lf_cfc_lstm, gates),
    LF_ABI_FIELD(lf_cfc_lstm, grad_c),
    LF_ABI_FIELD(lf_cfc_lstm, grad_pre),
    LF_ABI_FIELD(lf_cfc_lstm, grad_r_t),
    LF_ABI_FIELD(lf_cfc_lstm, grad_c0),
};
/* lf_cfc_abi_version, lf_cfc_struct_size, lf_cfc_field_offset */
LF_ABI_EXPORTS(cfc, LF_CFC_ABI_VERSION, lf_cfc_abi_fields)

int lf_cfc_maxlayers(void) { return LF_MAXL; }
int lf_cfc_maxbackbone(void) { return LF_CFC_MAXBB; }

#define REAL float
#define LF_SFX(name) name##_f32
#define LF_TANH lf_tanhf
#define LF_SIGMOID lf_sigmoidf
#define LF_EXP lf_expf
#define LF_ERF erff
#include "cfc_impl.h" /* undefines the macros above at its end */

/* double exp, tanh and sigmoid that vectorise (libm's are scalar calls: the float64 kernel ran ~3x the
 * float32 one): exp is lf_common.h's lf_exp_d (max relative error 2.2e-16 against libm). tanh from exp(-2|x|):
 * absolute error ~1e-16 (relative error larger only where |tanh| < 1e-8). */
static inline double lf_cfc_exp(double x) { return lf_exp_d(x); }

static inline double lf_cfc_sigmoid(double x) { return 1.0 / (1.0 + lf_cfc_exp(-x)); }

static inline double lf_cfc_tanh(double x) {
    double t = lf_cfc_exp(-2.0 * (x < 0 ? -x : x)), y = (1.0 - t) / (1.0 + t);
    return x < 0 ? -y : y;
}

#define REAL double
#define LF_SFX(name) name##_f64
#define LF_TANH lf_cfc_tanh
#define LF_SIGMOID lf_cfc_sigmoid
#define LF_EXP lf_cfc_exp
#define LF_ERF erf
#include "cfc_impl.h" /* undefines the macros above at its end */
