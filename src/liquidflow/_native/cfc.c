/* liquidflow native kernels: CfC chains (one layer with a backbone, or the wired layers of an NCP)
 * over a whole sequence, forward and backward; called by liquidflow/torch/_native_cfc.py.
 *
 * Arguments (all tensors contiguous unless given as pointer + strides):
 *   desc  L x LF_NDESC int64 per layer:
 *         0 H, 1 K (first map's outputs), 2 I (inputs of the map from layer l-1; 0 for layer 0),
 *         3 backbone, 4 no_gate, 5 offset of the layer's state in the chain state,
 *         6-8 WxT (I, K) as pointer, stride0, stride1;  9-11 WhT (H, K);  12-13 b (K) pointer, stride;
 *         14-16 HwT (K, 4H);  17-18 hb (4H);
 *         19 Z (T, B, K), 20 F (T, B, 2H), 21 G (T, B, H): saved by the forward pass for the backward
 *            pass (0: not saved, inference);
 *         outputs of the backward pass (0: not wanted): 22 dU (T, B, K) the gradient at the first map's
 *            output (layer 0: dP), 23 WxT's gradient (I, K), 24 WhT's (H, K), 25 b's (K), 26 HwT's
 *            (K, 4H), 27 hb's (4H), all contiguous.
 *   P (T, B, K_0) layer 0's first map over the inputs (bias included), ts (T, B) elapsed times,
 *   keep (T, B) uint8 or NULL, h0 (B, N), S (T, B, N) the states.
 * Weight gradients: each thread sums over its rows and every step, then the threads' sums are added. */
#include <stdint.h>
#include <stdlib.h>

#include "lf_common.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define LF_NDESC 28
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

int lf_cfc_version(void) { return 2; }
int lf_cfc_ndesc(void) { return LF_NDESC; }
int lf_cfc_maxlayers(void) { return LF_MAXL; }

#define REAL float
#define LF_SFX(name) name##_f32
#define LF_TANH lf_tanhf
#define LF_SIGMOID lf_sigmoidf
#include "cfc_impl.h"
#undef REAL
#undef LF_SFX
#undef LF_TANH
#undef LF_SIGMOID

#define REAL double
#define LF_SFX(name) name##_f64
#define LF_TANH lf_tanh
#define LF_SIGMOID lf_sigmoid
#include "cfc_impl.h"
#undef REAL
#undef LF_SFX
#undef LF_TANH
#undef LF_SIGMOID
