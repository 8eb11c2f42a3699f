/* liquidflow native kernels: LTC sequences with the semi-implicit solver or an explicit Runge-Kutta
 * method (dense and edge-list), forward and backward. The bodies are in ltc_impl.h, compiled once
 * for float (vectorisable lf_sigmoidf) and once for double (vectorisable lf_sigmoid_v below). */
#include <omp.h>
#include <stdlib.h>

#include "lf_abi.h"
#include "lf_common.h"

/* every field of the structs of this library's calls, for the check of liquidflow._ops.native_abi */
static const lf_abi_field lf_ltc_abi_fields[] = {
    LF_ABI_STRUCT(lf_ltc_seq),
    LF_ABI_FIELD(lf_ltc_seq, steps),
    LF_ABI_FIELD(lf_ltc_seq, batch),
    LF_ABI_FIELD(lf_ltc_seq, neurons),
    LF_ABI_FIELD(lf_ltc_seq, unfolds),
    LF_ABI_FIELD(lf_ltc_seq, edges),
    LF_ABI_FIELD(lf_ltc_seq, need_w),
    LF_ABI_FIELD(lf_ltc_seq, threads),
    LF_ABI_FIELD(lf_ltc_seq, base),
    LF_ABI_FIELD(lf_ltc_seq, c),
    LF_ABI_FIELD(lf_ltc_seq, keep),
    LF_ABI_FIELD(lf_ltc_seq, h0),
    LF_ABI_FIELD(lf_ltc_seq, w),
    LF_ABI_FIELD(lf_ltc_seq, we),
    LF_ABI_FIELD(lf_ltc_seq, sigma),
    LF_ABI_FIELD(lf_ltc_seq, sm),
    LF_ABI_FIELD(lf_ltc_seq, src),
    LF_ABI_FIELD(lf_ltc_seq, dst),
    LF_ABI_FIELD(lf_ltc_seq, states),
    LF_ABI_FIELD(lf_ltc_seq, v),
    LF_ABI_FIELD(lf_ltc_seq, d),
    LF_ABI_FIELD(lf_ltc_seq, grad_states),
    LF_ABI_FIELD(lf_ltc_seq, grad_base),
    LF_ABI_FIELD(lf_ltc_seq, grad_c),
    LF_ABI_FIELD(lf_ltc_seq, grad_h0),
    LF_ABI_FIELD(lf_ltc_seq, grad_w),
    LF_ABI_FIELD(lf_ltc_seq, grad_we),
    LF_ABI_FIELD(lf_ltc_seq, grad_sigma),
    LF_ABI_FIELD(lf_ltc_seq, grad_sm),
    LF_ABI_FIELD(lf_ltc_seq, stages),
    LF_ABI_FIELD(lf_ltc_seq, rk_a),
    LF_ABI_FIELD(lf_ltc_seq, rk_b),
    LF_ABI_FIELD(lf_ltc_seq, lstm_pre),
    LF_ABI_FIELD(lf_ltc_seq, lstm_r),
    LF_ABI_FIELD(lf_ltc_seq, lstm_r_t),
    LF_ABI_FIELD(lf_ltc_seq, lstm_c0),
    LF_ABI_FIELD(lf_ltc_seq, lstm_c),
    LF_ABI_FIELD(lf_ltc_seq, lstm_hl),
    LF_ABI_FIELD(lf_ltc_seq, lstm_gates),
    LF_ABI_FIELD(lf_ltc_seq, lstm_grad_c),
    LF_ABI_FIELD(lf_ltc_seq, lstm_grad_pre),
    LF_ABI_FIELD(lf_ltc_seq, lstm_grad_r_t),
    LF_ABI_FIELD(lf_ltc_seq, lstm_grad_c0),
    LF_ABI_STRUCT(lf_ltc_sensory),
    LF_ABI_FIELD(lf_ltc_sensory, rows),
    LF_ABI_FIELD(lf_ltc_sensory, inputs),
    LF_ABI_FIELD(lf_ltc_sensory, neurons),
    LF_ABI_FIELD(lf_ltc_sensory, need_w),
    LF_ABI_FIELD(lf_ltc_sensory, threads),
    LF_ABI_FIELD(lf_ltc_sensory, x),
    LF_ABI_FIELD(lf_ltc_sensory, leak),
    LF_ABI_FIELD(lf_ltc_sensory, sw),
    LF_ABI_FIELD(lf_ltc_sensory, swe),
    LF_ABI_FIELD(lf_ltc_sensory, ssig),
    LF_ABI_FIELD(lf_ltc_sensory, ssm),
    LF_ABI_FIELD(lf_ltc_sensory, base),
    LF_ABI_FIELD(lf_ltc_sensory, grad_base),
    LF_ABI_FIELD(lf_ltc_sensory, grad_x),
    LF_ABI_FIELD(lf_ltc_sensory, grad_leak),
    LF_ABI_FIELD(lf_ltc_sensory, grad_sw),
    LF_ABI_FIELD(lf_ltc_sensory, grad_swe),
    LF_ABI_FIELD(lf_ltc_sensory, grad_ssig),
    LF_ABI_FIELD(lf_ltc_sensory, grad_ssm),
};
/* lf_ltc_abi_version, lf_ltc_struct_size, lf_ltc_field_offset */
LF_ABI_EXPORTS(ltc, LF_LTC_ABI_VERSION, lf_ltc_abi_fields)

/* LANES: batch rows per vector in the edge-list kernels (64 bytes: one AVX-512 register) */
#define REAL float
#define LANES 16
#define LF_SIG lf_sigmoidf
#define LF_SFX(name) name##_f32
#define LF_TANH lf_tanhf
#define LF_SIGMOID lf_sigmoidf
#include "lstm_impl.h"
#include "ltc_impl.h" /* undefines the macros above at its end */

/* lf_common.h's libm-free double exp, so that the float64 synapse loops vectorise */
static inline double lf_exp_v(double x) { return lf_exp_d(x); }

static inline double lf_sigmoid_v(double x) { return 1.0 / (1.0 + lf_exp_v(-x)); }

#define REAL double
#define LANES 8
#define LF_SIG lf_sigmoid_v
#define LF_SFX(name) name##_f64
#define LF_TANH lf_tanh
#define LF_SIGMOID lf_sigmoid_v
#include "lstm_impl.h"
#include "ltc_impl.h" /* undefines the macros above at its end */
