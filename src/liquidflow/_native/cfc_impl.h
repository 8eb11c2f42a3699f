/* Body of the CfC chain kernels, included twice by cfc.c: REAL = float (suffix _f32, lf_expf-based
 * tanh / sigmoid) and REAL = double (suffix _f64, libm). See cfc.c for the layout of the arguments.
 *
 * One step of layer l of the chain (docs/math.md, section 3):
 *     u  = (l == 0 ? P[t] : b + y_prev WxT) + h WhT          first linear map (K columns)
 *     z  = act(u) d_0, z_k = act(z_{k-1} W_kT + b_k) d_k     backbone layers 0..nb-1 (d: dropout multipliers
 *                                                             or 1), v = hb + z HwT (v = u without a backbone)
 * act is the layer's LF_CFC_ACT_* (tanh, lecun_tanh, relu, gelu, silu). The backward pass takes
 * act'(u) from the saved z (tanh, lecun_tanh, relu) or from the saved zd = act'(u) (gelu, silu). The
 * sequence layers fold lecun_tanh's constants into the weights and pass tanh (two operations fewer).
 *     f1 = ha tanh(hs v[0:H]), f2 = ha tanh(hs v[H:2H])     (ha = hs = 1: tanh heads; lecun_tanh heads)
 *     g  = sigmoid(v[3H:4H] - dt v[2H:3H])
 *     h' = f2 + g (f1 - f2)   (default)   or   f1 g + f2   (no_gate);   h' = h where keep is false
 *     pure: v = u1 (H columns), h' = A - A e u1 with e = exp(-dt (|w_tau| + |u1|))
 * With mixed memory the LSTM step (lstm_impl.h) runs first at every step and its output is the h the
 * layers read; a step not observed keeps both the chain's h and the LSTM's c.
 * With the same dt for every step and sample ("merged"), the gate's pre-activation is one head:
 * v_g = (Wb - dt Wa) z + (bb - dt ba), so the heads have 3H columns instead of 4H.
 *
 * Every sample's recurrence is independent of the others', so each thread runs the whole time loop
 * for its own rows of the batch: no synchronisation inside the loop.
 *
 * Why one file (~800 lines): one template, included per REAL by cfc.c; the register-tiled products,
 * the padded weight layout (prepare), the forward rows and their hand-written adjoint (bwd_rows)
 * all read the same per-layer struct and vector type, and the adjoint is kept next to the forward
 * it inverts. The LSTM step is lstm_impl.h. */

typedef REAL LF_SFX(vec) __attribute__((vector_size(LF_VBYTES)));
#define VEC LF_SFX(vec)
#define VW ((int64_t)(LF_VBYTES / sizeof(REAL)))

#include "lstm_impl.h" /* the mixed-memory LSTM step, for this REAL */

/* ------------------------------------------------------------------------------------ matmul */
/* C[MR x NV*VW] = init + A[MR x K] B[K x NV*VW]; B, C, bias aligned to LF_VBYTES with row strides
 * that are multiples of VW; A is read one scalar at a time: A[r lda + k ldk] (any strides, so a
 * transposed A costs nothing). init: 0 zero, 1 the row vector bias, 2 C's own values (accumulate). */
static inline __attribute__((always_inline)) void LF_SFX(mm_tile)(const int MR, const int NV, int64_t K,
                                                                   const REAL *A, int64_t lda, int64_t ldk,
                                                                   const REAL *B,
                                                                   int64_t ldb, REAL *C, int64_t ldc, int init,
                                                                   const REAL *bias) {
    VEC acc[4][4];
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NV; v++) {
            if (init == 2)
                acc[r][v] = *(const VEC *)(C + r * ldc + v * VW);
            else if (init == 1)
                acc[r][v] = *(const VEC *)(bias + v * VW);
            else
                acc[r][v] = (VEC){0};
        }
    for (int64_t k = 0; k < K; k++) {
        VEC bv[4];
        for (int v = 0; v < NV; v++) bv[v] = *(const VEC *)(B + k * ldb + v * VW);
        for (int r = 0; r < MR; r++) {
            VEC a = (VEC){0} + A[r * lda + k * ldk];
            for (int v = 0; v < NV; v++) acc[r][v] += a * bv[v];
        }
    }
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NV; v++) *(VEC *)(C + r * ldc + v * VW) = acc[r][v];
}

#define LF_TILE_ROWS(NV)                                                                              \
    do {                                                                                              \
        int64_t i = 0;                                                                                \
        for (; i + 4 <= m; i += 4)                                                                    \
            LF_SFX(mm_tile)(4, NV, K, A + i * lda, lda, ldk, B + j * VW, ldb, C + i * ldc + j * VW, ldc, init, \
                            bias ? bias + j * VW : 0);                                                \
        for (; i < m; i++)                                                                            \
            LF_SFX(mm_tile)(1, NV, K, A + i * lda, lda, ldk, B + j * VW, ldb, C + i * ldc + j * VW, ldc, init, \
                            bias ? bias + j * VW : 0);                                                \
    } while (0)

/* C[m x n] = init + A[m x K] B[K x n] for n a multiple of VW; column panels of B outermost so a
 * panel (K x 4 VW) stays in L1 while every row block uses it */
static inline __attribute__((always_inline)) void LF_SFX(mm_any)(int64_t m, int64_t n, int64_t K, const REAL *A,
                                                                  int64_t lda, int64_t ldk, const REAL *B, int64_t ldb,
                                                                  REAL *C, int64_t ldc, int init, const REAL *bias) {
    int64_t nv = n / VW, j = 0;
    for (; j + 4 <= nv; j += 4) LF_TILE_ROWS(4);
    switch (nv - j) {
    case 3: LF_TILE_ROWS(3); break;
    case 2: LF_TILE_ROWS(2); break;
    case 1: LF_TILE_ROWS(1); break;
    default: break;
    }
}

static void LF_SFX(mm)(int64_t m, int64_t n, int64_t K, const REAL *A, int64_t lda, const REAL *B, int64_t ldb,
                       REAL *C, int64_t ldc, int init, const REAL *bias) {
    LF_SFX(mm_any)(m, n, K, A, lda, 1, B, ldb, C, ldc, init, bias);
}

/* C[m x n] += A^T B with A given as (K x m) rows of stride lda: the weight gradients */
static void LF_SFX(mm_tn)(int64_t m, int64_t n, int64_t K, const REAL *A, int64_t lda, const REAL *B, int64_t ldb,
                          REAL *C, int64_t ldc) {
    LF_SFX(mm_any)(m, n, K, A, 1, lda, B, ldb, C, ldc, 2, 0);
}

/* ------------------------------------------------------------------------------------ weights */
typedef struct {
    int64_t H, K, I, nb, mode, off, nV; /* nb: backbone layers; nV: head columns, 3H merged, 4H, or H (pure) */
    int64_t act, hact;                   /* LF_CFC_ACT_* of the backbone and of the heads f1, f2 */
    int64_t Kp, Vp, Hp, Ip;              /* padded column counts (multiples of VW) */
    REAL ha, hs;                         /* heads: f = ha tanh(hs v) (1, 1 for tanh) */
    REAL *WxT, *WhT, *b, *HwT, *hb;      /* forward:  (I x Kp), (H x Kp), (Kp), (K x Vp), (Vp) */
    REAL *Wx, *Wh, *Hw;                  /* backward: (K x Ip), (K x Hp), (nV x Kp) */
    REAL *DWT[LF_CFC_MAXBB], *Db[LF_CFC_MAXBB], *DW[LF_CFC_MAXBB]; /* backbone layers k >= 1: (K x Kp), (Kp), and
                                                                     transposed for the backward pass (K x Kp) */
    REAL *PA, *PW;                       /* pure: A, |w_tau| ... as given: A (H), w_tau (H) */
    REAL *Z[LF_CFC_MAXBB], *ZD[LF_CFC_MAXBB]; /* saved z_k (T,B,K), act'(u_k) d_k (T,B,K) or NULL */
    const REAL *DR[LF_CFC_MAXBB];        /* dropout multipliers of backbone layer k (T,B,K) or NULL */
    REAL *F, *G, *dU;                    /* saved (T,B,2H), (T,B,H); output (T,B,K) or NULL */
    REAL *gWxT, *gWhT, *gb, *gHwT, *ghb; /* weight gradients in the parameters' shapes, or NULL */
    REAL *gDWT[LF_CFC_MAXBB], *gDb[LF_CFC_MAXBB], *gA, *gW;
    int64_t acc;                         /* per-thread accumulator size of the weight gradients */
} LF_SFX(layer);

/* element (i, j) of a strided matrix or vector (j = 0) read in place */
#define LF_AT(m, i, j) ((const REAL *)(m).data)[(i) * (m).stride0 + (j) * (m).stride1]

/* per-thread accumulators of one layer, in this order: WxT (I x Kp), WhT (H x Kp), b (Kp), HwT (K x Vp),
 * hb (Vp), per backbone layer k >= 1 W_kT (K x Kp) and b_k (Kp), pure: A (Hp), w_tau (Hp) */
static inline int64_t LF_SFX(acc_size)(const LF_SFX(layer) *y) {
    return (y->I + y->H + 1) * y->Kp + (y->nb ? (y->K + 1) * y->Vp : 0) + (y->nb > 1 ? (y->nb - 1) * (y->K + 1) * y->Kp : 0) +
           (y->mode == LF_CFC_MODE_PURE ? 2 * y->Hp : 0);
}

/* padded copies of the weights (forward layout, and transposed for the backward pass); merged: the
 * gate head is (Wb - c Wa, bb - c ba) in columns 2H..3H. Returns the allocation (free it) or NULL. */
static REAL *LF_SFX(prepare)(int64_t L, const lf_cfc_layer *layers, LF_SFX(layer) *lay, int merged, REAL c,
                             int backward) {
    size_t total = 0;
    for (int64_t l = 0; l < L; l++) {
        const lf_cfc_layer *d = layers + l;
        LF_SFX(layer) *y = &lay[l];
        memset(y, 0, sizeof *y);
        y->H = d->hidden, y->K = d->width, y->I = d->in_size, y->nb = d->backbone;
        y->mode = d->mode, y->off = d->offset, y->act = d->activation, y->hact = d->head_activation;
        int pure = y->mode == LF_CFC_MODE_PURE;
        y->ha = y->hact == LF_CFC_ACT_LECUN_TANH ? (REAL)1.7159 : 1;
        y->hs = y->hact == LF_CFC_ACT_LECUN_TANH ? (REAL)0.666 : 1;
        y->nV = pure ? y->H : (y->nb && merged) ? 3 * y->H : 4 * y->H;
        y->Kp = lf_roundup(y->K, VW), y->Vp = lf_roundup(y->nV, VW);
        y->Hp = lf_roundup(y->H, VW), y->Ip = lf_roundup(y->I, VW);
        y->Z[0] = (REAL *)d->z, y->ZD[0] = (REAL *)d->zd, y->DR[0] = (const REAL *)d->drop;
        y->F = (REAL *)d->f, y->G = (REAL *)d->g;
        y->dU = (REAL *)d->grad_u;
        y->gWxT = (REAL *)d->grad_wx_t, y->gWhT = (REAL *)d->grad_wh_t, y->gb = (REAL *)d->grad_b;
        y->gHwT = (REAL *)d->grad_hw_t, y->ghb = (REAL *)d->grad_hb;
        y->gA = (REAL *)d->grad_a, y->gW = (REAL *)d->grad_w_tau;
        for (int64_t k = 1; k < y->nb; k++) {
            const lf_cfc_deep *e = d->deep + (k - 1);
            y->Z[k] = (REAL *)e->z, y->ZD[k] = (REAL *)e->zd, y->DR[k] = (const REAL *)e->drop;
            y->gDWT[k] = (REAL *)e->grad_w_t, y->gDb[k] = (REAL *)e->grad_b;
        }
        y->acc = LF_SFX(acc_size)(y);
        size_t n = (size_t)((y->I + y->H + 1) * y->Kp);
        if (y->nb) n += (size_t)((y->K + 1) * y->Vp);
        if (y->nb > 1) n += (size_t)((y->nb - 1) * (y->K + 1) * y->Kp);
        if (pure) n += (size_t)(2 * y->Hp);
        if (backward) {
            n += (size_t)(y->K * (y->Ip + y->Hp) + (y->nb ? y->nV * y->Kp : 0));
            if (y->nb > 1) n += (size_t)((y->nb - 1) * y->K * y->Kp);
        }
        total += n;
    }
    REAL *mem = (REAL *)lf_alloc(total * sizeof(REAL));
    if (!mem) return NULL;
    memset(mem, 0, total * sizeof(REAL)); /* padding columns stay zero */
    REAL *p = mem;
    for (int64_t l = 0; l < L; l++) {
        const lf_cfc_layer *d = layers + l;
        LF_SFX(layer) *y = &lay[l];
        int64_t H = y->H, K = y->K;
        int pure = y->mode == LF_CFC_MODE_PURE;
        int64_t ncol = pure ? H : 4 * H; /* head columns as given */
        y->WxT = p, p += y->I * y->Kp;
        y->WhT = p, p += H * y->Kp;
        y->b = p, p += y->Kp;
        for (int64_t i = 0; i < y->I; i++)
            for (int64_t j = 0; j < K; j++) y->WxT[i * y->Kp + j] = LF_AT(d->wx_t, i, j);
        for (int64_t i = 0; i < H; i++)
            for (int64_t j = 0; j < K; j++) y->WhT[i * y->Kp + j] = LF_AT(d->wh_t, i, j);
        if (d->b.data)
            for (int64_t j = 0; j < K; j++) y->b[j] = LF_AT(d->b, j, 0);
        if (y->nb) {
            int mg = merged && !pure;
            y->HwT = p, p += K * y->Vp;
            y->hb = p, p += y->Vp;
            for (int64_t k = 0; k < K; k++) {
                REAL *row = y->HwT + k * y->Vp;
                for (int64_t j = 0; j < ncol; j++) {
                    REAL w = LF_AT(d->hw_t, k, j);
                    if (!mg) row[j] = w;
                    else if (j < 2 * H) row[j] = w;
                    else if (j < 3 * H) row[j] = -c * w; /* - c Wa, then + Wb below */
                    else row[j - H] += w;
                }
            }
            for (int64_t j = 0; j < ncol; j++) {
                REAL w = LF_AT(d->hb, j, 0);
                if (!mg || j < 2 * H) y->hb[j] = w;
                else if (j < 3 * H) y->hb[j] = -c * w;
                else y->hb[j - H] += w;
            }
            for (int64_t k = 1; k < y->nb; k++) {
                const lf_cfc_deep *e = d->deep + (k - 1);
                y->DWT[k] = p, p += K * y->Kp;
                y->Db[k] = p, p += y->Kp;
                for (int64_t i = 0; i < K; i++)
                    for (int64_t j = 0; j < K; j++) y->DWT[k][i * y->Kp + j] = LF_AT(e->w_t, i, j);
                for (int64_t j = 0; j < K; j++) y->Db[k][j] = LF_AT(e->b, j, 0);
            }
        }
        if (pure) {
            y->PA = p, p += y->Hp;
            y->PW = p, p += y->Hp;
            for (int64_t j = 0; j < H; j++) y->PA[j] = LF_AT(d->a, j, 0), y->PW[j] = LF_AT(d->w_tau, j, 0);
        }
        if (backward) {
            y->Wx = p, p += K * y->Ip;
            y->Wh = p, p += K * y->Hp;
            for (int64_t k = 0; k < K; k++) {
                for (int64_t i = 0; i < y->I; i++) y->Wx[k * y->Ip + i] = y->WxT[i * y->Kp + k];
                for (int64_t i = 0; i < H; i++) y->Wh[k * y->Hp + i] = y->WhT[i * y->Kp + k];
            }
            if (y->nb) {
                y->Hw = p, p += y->nV * y->Kp;
                for (int64_t j = 0; j < y->nV; j++)
                    for (int64_t k = 0; k < K; k++) y->Hw[j * y->Kp + k] = y->HwT[k * y->Vp + j];
            }
            for (int64_t k = 1; k < y->nb; k++) {
                y->DW[k] = p, p += K * y->Kp;
                for (int64_t j = 0; j < K; j++)
                    for (int64_t i = 0; i < K; i++) y->DW[k][j * y->Kp + i] = y->DWT[k][i * y->Kp + j];
            }
        }
    }
    return mem;
}

/* the mixed-memory LSTM as the loops read it */
typedef struct {
    int64_t N, G, Gp, Np;   /* N, 4N, both padded */
    REAL *Rt, *R;           /* (N x Gp) = R^T padded, (G x Np) = R padded */
    const REAL *pre, *c0, *gC;
    REAL *C, *HL, *GT, *gpre, *gRt, *gc0;
} LF_SFX(lstmp);

/* the LSTM's weights copied (R^T for the forward step, R for the adjoint); returns the allocation or NULL */
static REAL *LF_SFX(prepare_lstm)(const lf_cfc_lstm *d, LF_SFX(lstmp) *q) {
    int64_t N = d->size, G = 4 * N;
    q->N = N, q->G = G, q->Gp = lf_roundup(G, VW), q->Np = lf_roundup(N, VW);
    q->pre = (const REAL *)d->pre, q->c0 = (const REAL *)d->c0, q->gC = (const REAL *)d->grad_c;
    q->C = (REAL *)d->c, q->HL = (REAL *)d->hl, q->GT = (REAL *)d->gates;
    q->gpre = (REAL *)d->grad_pre, q->gRt = (REAL *)d->grad_r_t, q->gc0 = (REAL *)d->grad_c0;
    REAL *mem = (REAL *)lf_alloc((size_t)(N * q->Gp + G * q->Np) * sizeof(REAL));
    if (!mem) return NULL;
    memset(mem, 0, (size_t)(N * q->Gp + G * q->Np) * sizeof(REAL));
    q->Rt = mem, q->R = mem + N * q->Gp;
    for (int64_t k = 0; k < N; k++)
        for (int64_t j = 0; j < G; j++) {
            REAL w = LF_AT(d->r_t, k, j);
            q->Rt[k * q->Gp + j] = w;
            q->R[j * q->Np + k] = w;
        }
    return mem;
}

/* ------------------------------------------------------------------------------------ activations */
#define LF_LECUN_A ((REAL)1.7159)
#define LF_LECUN_B ((REAL)0.666)

/* z = act(u) over one row of K values, and act'(u) into zd where given (gelu and silu: their
 * derivative needs u); one loop per activation so each vectorises */
static inline void LF_SFX(act_row)(int64_t act, const REAL *u, REAL *z, REAL *zd, int64_t K) {
    switch (act) {
    case LF_CFC_ACT_TANH:
#pragma omp simd
        for (int64_t j = 0; j < K; j++) z[j] = LF_TANH(u[j]);
        break;
    case LF_CFC_ACT_LECUN_TANH:
#pragma omp simd
        for (int64_t j = 0; j < K; j++) z[j] = LF_LECUN_A * LF_TANH(LF_LECUN_B * u[j]);
        break;
    case LF_CFC_ACT_RELU:
#pragma omp simd
        for (int64_t j = 0; j < K; j++) z[j] = u[j] > 0 ? u[j] : 0;
        break;
    case LF_CFC_ACT_GELU: /* u Phi(u), Phi the normal CDF; d/du = Phi(u) + u phi(u) */
        for (int64_t j = 0; j < K; j++) {
            REAL x = u[j], cdf = (REAL)0.5 * (1 + LF_ERF(x * (REAL)0.70710678118654752));
            z[j] = x * cdf;
            if (zd) zd[j] = cdf + x * (REAL)0.39894228040143268 * LF_EXP((REAL)-0.5 * x * x);
        }
        break;
    default: /* LF_CFC_ACT_SILU: u s, s = sigmoid(u); d/du = s (1 + u (1 - s)) */
#pragma omp simd
        for (int64_t j = 0; j < K; j++) {
            REAL x = u[j], s = LF_SIGMOID(x);
            z[j] = x * s;
            if (zd) zd[j] = s * (1 + x * (1 - s));
        }
        break;
    }
}

/* act_row, then with dropout multipliers d (NULL: none): z = act(u) d and, where zd is given, zd =
 * act'(u) d (the backward pass then reads zd for every activation) */
static inline void LF_SFX(act_drop_row)(int64_t act, const REAL *u, REAL *z, REAL *zd, const REAL *d, int64_t K) {
    LF_SFX(act_row)(act, u, z, zd, K);
    if (!d) return;
    if (zd) switch (act) {
        case LF_CFC_ACT_TANH:
#pragma omp simd
            for (int64_t j = 0; j < K; j++) zd[j] = 1 - z[j] * z[j];
            break;
        case LF_CFC_ACT_LECUN_TANH:
#pragma omp simd
            for (int64_t j = 0; j < K; j++) zd[j] = LF_LECUN_B * (LF_LECUN_A - z[j] * z[j] / LF_LECUN_A);
            break;
        case LF_CFC_ACT_RELU:
#pragma omp simd
            for (int64_t j = 0; j < K; j++) zd[j] = z[j] > 0 ? 1 : 0;
            break;
        default: break;
        }
#pragma omp simd
    for (int64_t j = 0; j < K; j++) {
        z[j] *= d[j];
        if (zd) zd[j] *= d[j];
    }
}

/* du = dz act'(u) over one row, act'(u) from z (tanh, lecun_tanh, relu) or the saved zd */
static inline void LF_SFX(act_bwd_row)(int64_t act, const REAL *dz, const REAL *z, const REAL *zd, REAL *du,
                                       int64_t K) {
    switch (act) {
    case LF_CFC_ACT_TANH:
#pragma omp simd
        for (int64_t j = 0; j < K; j++) du[j] = dz[j] * (1 - z[j] * z[j]);
        break;
    case LF_CFC_ACT_LECUN_TANH: /* A B (1 - tanh^2) = B (A - z^2 / A) */
#pragma omp simd
        for (int64_t j = 0; j < K; j++) du[j] = dz[j] * (LF_LECUN_B * (LF_LECUN_A - z[j] * z[j] / LF_LECUN_A));
        break;
    case LF_CFC_ACT_RELU: /* z > 0 exactly where u > 0 */
#pragma omp simd
        for (int64_t j = 0; j < K; j++) du[j] = z[j] > 0 ? dz[j] : 0;
        break;
    default:
#pragma omp simd
        for (int64_t j = 0; j < K; j++) du[j] = dz[j] * zd[j];
        break;
    }
}

/* ------------------------------------------------------------------------------------ forward */
static int LF_SFX(fwd_rows)(int64_t L, LF_SFX(layer) *lay, int64_t T, int64_t B, int64_t N, const REAL *P,
                            int64_t K0, const REAL *ts, const uint8_t *keep, const REAL *h0, REAL *S, int merged,
                            const LF_SFX(lstmp) *ls, int64_t b0, int64_t b1) {
    int64_t m = b1 - b0, Kmax = 0, Vmax = 0;
    for (int64_t l = 0; l < L; l++) {
        if (lay[l].Kp > Kmax) Kmax = lay[l].Kp;
        if (lay[l].Vp > Vmax) Vmax = lay[l].Vp;
    }
    int64_t lsz = ls ? m * (ls->Gp + N + ls->G) : 0; /* LSTM scratch: z, h_l and gates when not saved */
    REAL *U = (REAL *)lf_alloc((size_t)(m * (2 * Kmax + Vmax) + lsz) * sizeof(REAL));
    if (!U) return -1;
    REAL *Zs = U + m * Kmax, *V = Zs + m * Kmax; /* z when it is not saved; the heads */
    REAL *Zl = V + m * Vmax, *HLs = ls ? Zl + m * ls->Gp : 0, *GTs = ls ? HLs + m * N : 0;
    for (int64_t t = 0; t < T; t++) {
        /* the state before this step, rows b0.. of (B, N); with mixed memory the layers read the LSTM's output */
        const REAL *hprev = (t == 0 ? h0 : S + (t - 1) * B * N) + b0 * N, *hin = hprev;
        if (ls) {
            int64_t G = ls->G;
            const REAL *cprev = (t == 0 ? ls->c0 : ls->C + (t - 1) * B * N) + b0 * N;
            REAL *cn = ls->C + (t * B + b0) * N;
            REAL *hl = ls->HL ? ls->HL + (t * B + b0) * N : HLs;
            REAL *gt = ls->GT ? ls->GT + (t * B + b0) * G : GTs;
            const REAL *pr = ls->pre + (t * B + b0) * G;
            for (int64_t r = 0; r < m; r++) memcpy(Zl + r * ls->Gp, pr + r * G, (size_t)G * sizeof(REAL));
            LF_SFX(mm)(m, ls->Gp, N, hprev, N, ls->Rt, ls->Gp, Zl, ls->Gp, 2, 0); /* z = pre + h R^T */
            LF_SFX(lstm_gates_fwd)(m, N, Zl, ls->Gp, cprev, N, gt, G, cn, N, hl, N);
            if (keep)
                for (int64_t r = 0; r < m; r++)
                    if (!keep[t * B + b0 + r]) memcpy(cn + r * N, cprev + r * N, (size_t)N * sizeof(REAL));
            hin = hl;
        }
        for (int64_t l = 0; l < L; l++) {
            const LF_SFX(layer) *y = &lay[l];
            int64_t H = y->H, K = y->K, off = y->off;
            const REAL *h = hin + off, *hp = hprev + off;
            REAL *out = S + t * B * N + b0 * N + off;
            if (l == 0) {
                const REAL *Pt = P + (t * B + b0) * K0;
                for (int64_t r = 0; r < m; r++) {
                    memcpy(U + r * y->Kp, Pt + r * K0, (size_t)K0 * sizeof(REAL));
                    for (int64_t j = K0; j < y->Kp; j++) U[r * y->Kp + j] = 0;
                }
                LF_SFX(mm)(m, y->Kp, H, h, N, y->WhT, y->Kp, U, y->Kp, 2, 0);
            } else {
                const REAL *yp = S + t * B * N + b0 * N + lay[l - 1].off; /* layer l-1's new state */
                LF_SFX(mm)(m, y->Kp, y->I, yp, N, y->WxT, y->Kp, U, y->Kp, 1, y->b);
                LF_SFX(mm)(m, y->Kp, H, h, N, y->WhT, y->Kp, U, y->Kp, 2, 0);
            }
            const REAL *v;
            int64_t ldv;
            if (y->nb) {
                REAL *z = 0;
                for (int64_t k = 0; k < y->nb; k++) {
                    if (k > 0) LF_SFX(mm)(m, y->Kp, K, z, K, y->DWT[k], y->Kp, U, y->Kp, 1, y->Db[k]);
                    int64_t o = (t * B + b0) * K;
                    REAL *zk = y->Z[k] ? y->Z[k] + o : Zs; /* Zs: z_{k-1} is read into U already */
                    REAL *zd = y->ZD[k] ? y->ZD[k] + o : 0;
                    const REAL *dr = y->DR[k] ? y->DR[k] + o : 0;
                    for (int64_t r = 0; r < m; r++)
                        LF_SFX(act_drop_row)(y->act, U + r * y->Kp, zk + r * K, zd ? zd + r * K : 0,
                                             dr ? dr + r * K : 0, K);
                    z = zk;
                }
                LF_SFX(mm)(m, y->Vp, K, z, K, y->HwT, y->Vp, V, y->Vp, 1, y->hb);
                v = V, ldv = y->Vp;
            } else {
                v = U, ldv = y->Kp;
            }
            int mg = merged && y->nb && y->mode != LF_CFC_MODE_PURE;
            for (int64_t r = 0; r < m; r++) {
                int64_t bi = b0 + r;
                const REAL *vr = v + r * ldv, *hr = hp + r * N;
                REAL dt = ts[t * B + bi];
                REAL *o = out + r * N;
                REAL *Fr = y->F ? y->F + (t * B + bi) * 2 * H : 0, *Gr = y->G ? y->G + (t * B + bi) * H : 0;
                if (y->mode == LF_CFC_MODE_PURE) {
                    const REAL *A = y->PA, *W = y->PW;
#pragma omp simd
                    for (int64_t j = 0; j < H; j++) {
                        REAL u = vr[j], au = u < 0 ? -u : u, aw = W[j] < 0 ? -W[j] : W[j];
                        REAL e = LF_EXP(-dt * (aw + au));
                        o[j] = A[j] - A[j] * e * u;
                        if (Fr) Fr[j] = u, Fr[H + j] = e;
                    }
                } else {
                    const REAL *va = vr + 2 * H, *vb = vr + (mg ? 2 * H : 3 * H);
                    REAL ndt = mg ? 0 : -dt, ha = y->ha, hs = y->hs;
                    int nogate = y->mode == LF_CFC_MODE_NO_GATE;
#pragma omp simd
                    for (int64_t j = 0; j < H; j++) {
                        REAL f1 = ha * LF_TANH(hs * vr[j]), f2 = ha * LF_TANH(hs * vr[H + j]);
                        REAL g = LF_SIGMOID(vb[j] + ndt * va[j]);
                        o[j] = nogate ? f1 * g + f2 : f2 + g * (f1 - f2);
                        if (Fr) Fr[j] = f1, Fr[H + j] = f2, Gr[j] = g;
                    }
                }
                if (keep && !keep[t * B + bi]) memcpy(o, hr, (size_t)H * sizeof(REAL));
            }
        }
    }
    lf_free(U);
    return 0;
}

/* ------------------------------------------------------------------------------------ backward */
/* The adjoint of one step, layers in reverse (dh: gradient at each layer's state, carried to t-1;
 * dy: gradient at layer l-1's new state from layer l's input map), and the weight gradients as
 * sums over this thread's rows and all steps into `acc` (the caller adds the threads' sums). */
static int LF_SFX(bwd_rows)(int64_t L, LF_SFX(layer) *lay, int64_t T, int64_t B, int64_t N, const REAL *ts,
                            const uint8_t *keep, const REAL *h0, const REAL *S, const REAL *gS, REAL *gh0,
                            int merged, const LF_SFX(lstmp) *ls, REAL *acc, int64_t b0, int64_t b1) {
    int64_t m = b1 - b0, Kmax = 0, Dmax = 0, Hsum = 0, Imax = 0;
    for (int64_t l = 0; l < L; l++) {
        const LF_SFX(layer) *y = &lay[l];
        if (y->Kp > Kmax) Kmax = y->Kp;
        if (y->Vp > Dmax) Dmax = y->Vp;
        if (y->Ip > Imax) Imax = y->Ip;
        Hsum += y->Hp;
    }
    if (Kmax > Dmax) Dmax = Kmax;
    /* with mixed memory: dhl (the gradient at the LSTM's output, per layer as dh), DZL, DHR, DHL, DC */
    int64_t lsz = ls ? m * (Hsum + ls->Gp + ls->Np + 2 * N) : 0;
    size_t n = (size_t)(m * (2 * Kmax + Dmax + Hsum + Imax) + lsz);
    REAL *dz = (REAL *)lf_alloc(n * sizeof(REAL));
    if (!dz) return -1;
    memset(dz, 0, n * sizeof(REAL)); /* the padding columns stay zero */
    REAL *DU = dz + m * Kmax, *D = DU + m * Kmax, *dhall = D + m * Dmax, *dy = dhall + m * Hsum;
    REAL *dhlall = dy + m * Imax, *DZL = dhlall + (ls ? m * Hsum : 0), *DHR = DZL + (ls ? m * ls->Gp : 0);
    REAL *DHL = DHR + (ls ? m * ls->Np : 0), *DC = DHL + (ls ? m * N : 0); /* DZL, DHR aligned (mm) */
    REAL *dh[LF_MAXL], *dhl[LF_MAXL];
    for (int64_t l = 0, o = 0; l < L; l++) dh[l] = dhall + m * o, dhl[l] = dhlall + m * o, o += lay[l].Hp;
    int64_t accl = 0; /* the LSTM's accumulator (N x Gp) after the layers' */
    for (int64_t l = 0; l < L; l++) accl += lay[l].acc;
    for (int64_t t = T - 1; t >= 0; t--) {
        const REAL *hprev = (t == 0 ? h0 : S + (t - 1) * B * N) + b0 * N;
        const REAL *hin = ls ? ls->HL + (t * B + b0) * N : hprev; /* the state the layers read */
        for (int64_t l = L - 1, ao = 0; l >= 0; l--) {
            const LF_SFX(layer) *y = &lay[l];
            int64_t H = y->H, K = y->K, Hp = y->Hp, Kp = y->Kp;
            int pure = y->mode == LF_CFC_MODE_PURE;
            int mg = merged && y->nb && !pure, nogate = y->mode == LF_CFC_MODE_NO_GATE;
            /* this layer's accumulators (laid out from the last layer down, as the loop runs) */
            REAL *aWx = acc + ao, *aWh = aWx + y->I * Kp, *ab = aWh + H * Kp, *aHw = ab + Kp,
                 *ahb = aHw + (y->nb ? K * y->Vp : 0), *aD = ahb + (y->nb ? y->Vp : 0),
                 *aA = aD + (y->nb > 1 ? (y->nb - 1) * (K + 1) * Kp : 0), *aW = aA + Hp;
            ao += y->acc;
            /* gradient at the heads, D (m x ldd): at v (backbone) or directly at u */
            int64_t ldd = y->nb ? y->Vp : Kp;
            REAL *Du = y->nb ? DU : D; /* gradient at u (m x Kp) */
            for (int64_t r = 0; r < m; r++) {
                int64_t bi = b0 + r;
                const REAL *gs = gS + (t * B + bi) * N + y->off;
                const REAL *Fr = y->F + (t * B + bi) * 2 * H;
                const REAL *dyr = l + 1 < L ? dy + r * lay[l + 1].Ip : 0;
                REAL *dhr = dh[l] + r * Hp, *Dr = D + r * ldd;
                REAL dt = ts[t * B + bi];
                int kp = keep ? keep[t * B + bi] != 0 : 1;
                if (pure) {
                    const REAL *A = y->PA, *W = y->PW;
#pragma omp simd
                    for (int64_t j = 0; j < H; j++) {
                        REAL dn = gs[j] + dhr[j] + (dyr ? dyr[j] : 0);
                        REAL carry = kp ? 0 : dn;
                        dn = kp ? dn : 0;
                        REAL u = Fr[j], e = Fr[H + j], au = u < 0 ? -u : u;
                        REAL sw = W[j] > 0 ? 1 : (W[j] < 0 ? -1 : 0);
                        Dr[j] = -dn * A[j] * e * (1 - dt * au); /* d/du of A - A e u */
                        aA[j] += dn * (1 - e * u);
                        aW[j] += dn * A[j] * u * e * dt * sw;
                        dhr[j] = carry;
                    }
                    continue;
                }
                const REAL *Gr = y->G + (t * B + bi) * H;
                REAL ha = y->ha, hs = y->hs;
#pragma omp simd
                for (int64_t j = 0; j < H; j++) {
                    REAL dn = gs[j] + dhr[j] + (dyr ? dyr[j] : 0);
                    REAL carry = kp ? 0 : dn; /* a masked step passes the gradient on to h */
                    dn = kp ? dn : 0;
                    REAL f1 = Fr[j], f2 = Fr[H + j], g = Gr[j];
                    REAL d1 = dn * g;
                    REAL d2 = nogate ? dn : dn - d1;
                    REAL dg = nogate ? dn * f1 : dn * (f1 - f2);
                    REAL dgp = dg * g * (1 - g); /* at the gate's pre-activation vb - dt va */
                    Dr[j] = d1 * (hs * (ha - f1 * f1 / ha)); /* f = ha tanh(hs v): f' = hs (ha - f^2 / ha) */
                    Dr[H + j] = d2 * (hs * (ha - f2 * f2 / ha));
                    if (mg) {
                        Dr[2 * H + j] = dgp;
                    } else {
                        Dr[2 * H + j] = -dt * dgp;
                        Dr[3 * H + j] = dgp;
                    }
                    dhr[j] = carry;
                }
            }
            if (y->nb) { /* back through the heads and the backbone layers to du */
                int64_t o = (t * B + b0) * K, top = y->nb - 1;
                const REAL *z = y->Z[top] + o;
                LF_SFX(mm)(m, Kp, y->nV, D, ldd, y->Hw, Kp, dz, Kp, 0, 0); /* dz_top = D Hw */
                if (y->gHwT) LF_SFX(mm_tn)(K, y->Vp, m, z, K, D, ldd, aHw, y->Vp); /* HwT += z^T D */
                if (y->ghb)
                    for (int64_t r = 0; r < m; r++)
#pragma omp simd
                        for (int64_t j = 0; j < y->Vp; j++) ahb[j] += D[r * ldd + j];
                for (int64_t k = top; k >= 0; k--) {
                    const REAL *zk = y->Z[k] + o, *zd = y->ZD[k] ? y->ZD[k] + o : 0;
                    int64_t code = zd ? -1 : y->act; /* -1: from the saved zd */
                    for (int64_t r = 0; r < m; r++)
                        LF_SFX(act_bwd_row)(code, dz + r * Kp, zk + r * K, zd ? zd + r * K : 0, DU + r * Kp, K);
                    if (k == 0) break;
                    REAL *aDW = aD + (k - 1) * (K + 1) * Kp, *aDb = aDW + K * Kp;
                    const REAL *zp = y->Z[k - 1] + o;
                    if (y->gDWT[k]) LF_SFX(mm_tn)(K, Kp, m, zp, K, DU, Kp, aDW, Kp); /* W_kT += z_{k-1}^T du_k */
                    if (y->gDb[k])
                        for (int64_t r = 0; r < m; r++)
#pragma omp simd
                            for (int64_t j = 0; j < Kp; j++) aDb[j] += DU[r * Kp + j];
                    LF_SFX(mm)(m, Kp, K, DU, Kp, y->DW[k], Kp, dz, Kp, 0, 0); /* dz_{k-1} = du_k W_k */
                }
            }
            if (y->dU)
                for (int64_t r = 0; r < m; r++) memcpy(y->dU + (t * B + b0 + r) * K, Du + r * Kp, (size_t)K * sizeof(REAL));
            const REAL *h = hin + y->off;
            if (y->gWhT) LF_SFX(mm_tn)(H, Kp, m, h, N, Du, Kp, aWh, Kp); /* WhT += h^T du */
            if (l > 0 && y->gWxT) {
                const REAL *yp = S + t * B * N + b0 * N + lay[l - 1].off;
                LF_SFX(mm_tn)(y->I, Kp, m, yp, N, Du, Kp, aWx, Kp); /* WxT += y_prev^T du */
            }
            if (l > 0 && y->gb)
                for (int64_t r = 0; r < m; r++)
#pragma omp simd
                    for (int64_t j = 0; j < Kp; j++) ab[j] += Du[r * Kp + j];
            if (ls) LF_SFX(mm)(m, Hp, K, Du, Kp, y->Wh, Hp, dhl[l], Hp, 0, 0); /* at the LSTM's output */
            else LF_SFX(mm)(m, Hp, K, Du, Kp, y->Wh, Hp, dh[l], Hp, 2, 0); /* dh = carry + du Wh */
            if (l > 0) LF_SFX(mm)(m, y->Ip, K, Du, Kp, y->Wx, y->Ip, dy, y->Ip, 0, 0);
        }
        if (ls) { /* the LSTM step's adjoint: dh_l -> dz -> (dpre, dR, dh_{t-1}), dc_t -> dc_{t-1} */
            int64_t G = ls->G, Gp = ls->Gp, Np = ls->Np;
            for (int64_t l = 0; l < L; l++)
                for (int64_t r = 0; r < m; r++)
                    memcpy(DHL + r * N + lay[l].off, dhl[l] + r * lay[l].Hp, (size_t)lay[l].H * sizeof(REAL));
            if (ls->gC)
                for (int64_t r = 0; r < m; r++)
#pragma omp simd
                    for (int64_t j = 0; j < N; j++) DC[r * N + j] += ls->gC[(t * B + b0 + r) * N + j];
            const REAL *cprev = (t == 0 ? ls->c0 : ls->C + (t - 1) * B * N) + b0 * N;
            const REAL *cn = ls->C + (t * B + b0) * N, *gt = ls->GT + (t * B + b0) * G;
            for (int64_t r = 0; r < m; r++) {
                if (keep && !keep[t * B + b0 + r]) { /* c and h kept: the gradients pass on unchanged */
                    memset(DZL + r * Gp, 0, (size_t)G * sizeof(REAL));
                    continue;
                }
                LF_SFX(lstm_step_bwd)(1, N, gt + r * G, G, cprev + r * N, N, cn + r * N, N, DHL + r * N, N, DC + r * N,
                                      N, DZL + r * Gp, Gp, DC + r * N, N);
            }
            if (ls->gpre)
                for (int64_t r = 0; r < m; r++)
                    memcpy(ls->gpre + (t * B + b0 + r) * G, DZL + r * Gp, (size_t)G * sizeof(REAL));
            if (ls->gRt) LF_SFX(mm_tn)(N, Gp, m, hprev, N, DZL, Gp, acc + accl, Gp); /* R^T += h^T dz */
            LF_SFX(mm)(m, Np, G, DZL, Gp, ls->R, Np, DHR, Np, 0, 0);                /* dz R */
            for (int64_t l = 0; l < L; l++)
                for (int64_t r = 0; r < m; r++)
#pragma omp simd
                    for (int64_t j = 0; j < lay[l].H; j++) dh[l][r * lay[l].Hp + j] += DHR[r * Np + lay[l].off + j];
        }
    }
    if (ls && ls->gc0) memcpy(ls->gc0 + b0 * N, DC, (size_t)(m * N) * sizeof(REAL));
    for (int64_t l = 0; l < L; l++)
        for (int64_t r = 0; r < m; r++)
            memcpy(gh0 + (b0 + r) * N + lay[l].off, dh[l] + r * lay[l].Hp, (size_t)lay[l].H * sizeof(REAL));
    lf_free(dz);
    return 0;
}

/* the threads' sums of one weight gradient (rows x cols of the accumulator, row stride ld) into
 * out (rows x cols); merged heads: columns [f1, f2, gate] become [f1, f2, time_a = -c gate, time_b = gate] */
static void LF_SFX(reduce)(const REAL *acc, int64_t stride, int nth, int64_t rows, int64_t cols, int64_t ld, REAL *out,
                           int64_t H, int merged, REAL c) {
    for (int64_t i = 0; i < rows; i++) {
        int64_t oc = merged ? cols + H : cols;
        REAL *o = out + i * oc;
        for (int64_t j = 0; j < cols; j++) {
            REAL s = 0;
            for (int th = 0; th < nth; th++) s += acc[th * stride + i * ld + j];
            if (merged && j >= 2 * H) {
                o[j] = -c * s;
                o[j + H] = s;
            } else {
                o[j] = s;
            }
        }
    }
}

/* ------------------------------------------------------------------------------------ entry points */
/* uniform dt: every step and sample has the same elapsed time (then the gate heads merge) */
static int LF_SFX(uniform)(const REAL *ts, int64_t n) {
    for (int64_t i = 1; i < n; i++)
        if (ts[i] != ts[0]) return 0;
    return 1;
}

/* 1 when the chain's length and every layer's backbone are in range */
static int LF_SFX(chain_ok)(int64_t L, const lf_cfc_layer *layers) {
    if (L < 1 || L > LF_MAXL) return 0;
    for (int64_t l = 0; l < L; l++) {
        const lf_cfc_layer *d = layers + l;
        if (d->backbone < 0 || d->backbone > LF_CFC_MAXBB || (d->backbone > 1 && !d->deep)) return 0;
    }
    return 1;
}

/* prepare the chain's layers (lay; see prepare) and its LSTM (*ls = lsp, or NULL without one): returns
 * the layers' memory and sets *lmem to the LSTM's (both to free), or NULL when out of memory */
static REAL *LF_SFX(prepare_chain)(int64_t L, const lf_cfc_layer *layers, LF_SFX(layer) *lay, int merged, REAL c,
                                   int bwd, const lf_cfc_lstm *lstm, LF_SFX(lstmp) *lsp, LF_SFX(lstmp) **ls,
                                   REAL **lmem) {
    *ls = 0;
    *lmem = 0;
    REAL *mem = LF_SFX(prepare)(L, layers, lay, merged, c, bwd);
    if (!mem || !lstm) return mem;
    *lmem = LF_SFX(prepare_lstm)(lstm, lsp);
    if (!*lmem) {
        lf_free(mem);
        return 0;
    }
    *ls = lsp;
    return mem;
}

/* States S (T, B, N) of the chain. Returns 1 when the gate heads were merged (uniform dt, allowed
 * by merge_ok, some layer has a backbone), 0 when not, -1 when out of memory. */
int LF_SFX(lf_cfc_forward)(int64_t L, const lf_cfc_layer *layers, int64_t T, int64_t B, int64_t N, const REAL *P,
                           int64_t K0, const REAL *ts, const uint8_t *keep, const REAL *h0, REAL *S, int64_t merge_ok,
                           const lf_cfc_lstm *lstm, int64_t nt) {
    if (lstm && (lstm->size != N || !lstm->c || !lstm->pre || !lstm->c0 || !lstm->r_t.data)) return -2;
    if (!LF_SFX(chain_ok)(L, layers)) return -2;
    LF_SFX(layer) lay[LF_MAXL];
    int anyb = 0;
    for (int64_t l = 0; l < L; l++) anyb |= layers[l].backbone != 0 && layers[l].mode != LF_CFC_MODE_PURE;
    int merged = merge_ok && anyb && LF_SFX(uniform)(ts, T * B);
    LF_SFX(lstmp) lsp, *ls;
    REAL *lmem, *mem = LF_SFX(prepare_chain)(L, layers, lay, merged, merged ? ts[0] : 0, 0, lstm, &lsp, &ls, &lmem);
    if (!mem) return -1;
    int fail = 0;
    int nth = lf_threads(B, nt);
#pragma omp parallel num_threads(nth) reduction(| : fail)
    {
        int64_t b0, b1;
        lf_rows(B, &b0, &b1);
        if (b0 < b1) fail |= LF_SFX(fwd_rows)(L, lay, T, B, N, P, K0, ts, keep, h0, S, merged, ls, b0, b1) != 0;
    }
    lf_free(lmem);
    lf_free(mem);
    return fail ? -1 : merged;
}

/* The adjoint: dU_0 (T, B, K_0) = dP where asked for, gh0 (B, N), and the weight gradients asked
 * for (the grad_* fields of `layers`). `merged` as returned by the forward pass. Returns 0, or -1
 * when out of memory. */
int LF_SFX(lf_cfc_backward)(int64_t L, const lf_cfc_layer *layers, int64_t T, int64_t B, int64_t N, const REAL *ts,
                            const uint8_t *keep, const REAL *h0, const REAL *S, const REAL *gS, REAL *gh0,
                            int64_t merged, const lf_cfc_lstm *lstm, int64_t nt) {
    if (!LF_SFX(chain_ok)(L, layers)) return -2;
    if (lstm && (lstm->size != N || !lstm->c || !lstm->hl || !lstm->gates || !lstm->c0 || !lstm->r_t.data)) return -2;
    for (int64_t l = 0; l < L; l++) { /* the saved buffers the adjoint reads */
        const lf_cfc_layer *d = layers + l;
        int need_zd = d->activation == LF_CFC_ACT_GELU || d->activation == LF_CFC_ACT_SILU;
        if (!d->f || (!d->g && d->mode != LF_CFC_MODE_PURE)) return -2;
        if (d->backbone && (!d->z || ((need_zd || d->drop) && !d->zd))) return -2;
        for (int64_t k = 1; k < d->backbone; k++) {
            const lf_cfc_deep *e = d->deep + (k - 1);
            if (!e->z || ((need_zd || e->drop) && !e->zd)) return -2;
        }
    }
    LF_SFX(layer) lay[LF_MAXL];
    REAL c = merged ? ts[0] : 0;
    LF_SFX(lstmp) lsp, *ls;
    REAL *lmem, *mem = LF_SFX(prepare_chain)(L, layers, lay, (int)merged, c, 1, lstm, &lsp, &ls, &lmem);
    if (!mem) return -1;
    int nth = lf_threads(B, nt);
    int64_t stride = 0;
    for (int64_t l = 0; l < L; l++) stride += lay[l].acc;
    int64_t accl = stride;
    if (ls) stride += N * ls->Gp;
    REAL *acc = (REAL *)lf_alloc((size_t)(nth * stride) * sizeof(REAL));
    if (!acc) {
        lf_free(lmem);
        lf_free(mem);
        return -1;
    }
    memset(acc, 0, (size_t)(nth * stride) * sizeof(REAL));
    int fail = 0;
#pragma omp parallel num_threads(nth) reduction(| : fail)
    {
        int64_t b0, b1;
        int tid = lf_rows(B, &b0, &b1);
        if (b0 < b1)
            fail |= LF_SFX(bwd_rows)(L, lay, T, B, N, ts, keep, h0, S, gS, gh0, (int)merged, ls, acc + tid * stride,
                                     b0, b1) != 0;
    }
    if (!fail) {
        for (int64_t l = L - 1, ao = 0; l >= 0; l--) { /* accumulators from the last layer down */
            const LF_SFX(layer) *y = &lay[l];
            int64_t K = y->K, Kp = y->Kp;
            const REAL *aWx = acc + ao, *aWh = aWx + y->I * Kp, *ab = aWh + y->H * Kp, *aHw = ab + Kp;
            const REAL *ahb = aHw + (y->nb ? K * y->Vp : 0), *aD = ahb + (y->nb ? y->Vp : 0);
            const REAL *aA = aD + (y->nb > 1 ? (y->nb - 1) * (K + 1) * Kp : 0), *aW = aA + y->Hp;
            ao += y->acc;
            if (l > 0 && y->gWxT) LF_SFX(reduce)(aWx, stride, nth, y->I, K, Kp, y->gWxT, 0, 0, 0);
            if (y->gWhT) LF_SFX(reduce)(aWh, stride, nth, y->H, K, Kp, y->gWhT, 0, 0, 0);
            if (l > 0 && y->gb) LF_SFX(reduce)(ab, stride, nth, 1, K, Kp, y->gb, 0, 0, 0);
            int mg = merged && y->nb && y->mode != LF_CFC_MODE_PURE;
            if (y->nb && y->gHwT) LF_SFX(reduce)(aHw, stride, nth, K, y->nV, y->Vp, y->gHwT, y->H, mg, c);
            if (y->nb && y->ghb) LF_SFX(reduce)(ahb, stride, nth, 1, y->nV, y->Vp, y->ghb, y->H, mg, c);
            for (int64_t k = 1; k < y->nb; k++) {
                const REAL *aDW = aD + (k - 1) * (K + 1) * Kp, *aDb = aDW + K * Kp;
                if (y->gDWT[k]) LF_SFX(reduce)(aDW, stride, nth, K, K, Kp, y->gDWT[k], 0, 0, 0);
                if (y->gDb[k]) LF_SFX(reduce)(aDb, stride, nth, 1, K, Kp, y->gDb[k], 0, 0, 0);
            }
            if (y->mode == LF_CFC_MODE_PURE) {
                if (y->gA) LF_SFX(reduce)(aA, stride, nth, 1, y->H, y->Hp, y->gA, 0, 0, 0);
                if (y->gW) LF_SFX(reduce)(aW, stride, nth, 1, y->H, y->Hp, y->gW, 0, 0, 0);
            }
        }
    }
    if (!fail && ls && ls->gRt) LF_SFX(reduce)(acc + accl, stride, nth, N, ls->G, ls->Gp, ls->gRt, 0, 0, 0);
    lf_free(acc);
    lf_free(lmem);
    lf_free(mem);
    return fail ? -1 : 0;
}

#undef VEC
#undef VW
#undef LF_TILE_ROWS
#undef LF_AT
#undef LF_LECUN_A
#undef LF_LECUN_B

/* the template's parameters, defined by cfc.c before each inclusion */
#undef REAL
#undef LF_SFX
#undef LF_TANH
#undef LF_SIGMOID
#undef LF_EXP
#undef LF_ERF
