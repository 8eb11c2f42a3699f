/* Body of the CfC chain kernels, included twice by cfc.c: REAL = float (suffix _f32, lf_expf-based
 * tanh / sigmoid) and REAL = double (suffix _f64, libm). See cfc.c for the layout of the arguments.
 *
 * One step of layer l of the chain (docs/math.md, section 3):
 *     u  = (l == 0 ? P[t] : b + y_prev WxT) + h WhT          first linear map (K columns)
 *     z  = act(u), v = hb + z HwT                           backbone and heads (v = u without one)
 * act is the layer's LF_CFC_ACT_* (tanh, lecun_tanh, relu, gelu, silu). The backward pass takes
 * act'(u) from the saved z (tanh, lecun_tanh, relu) or from the saved zd = act'(u) (gelu, silu). The
 * sequence layers fold lecun_tanh's constants into the weights and pass tanh (two operations fewer).
 *     f1 = tanh(v[0:H]), f2 = tanh(v[H:2H])
 *     g  = sigmoid(v[3H:4H] - dt v[2H:3H])
 *     h' = f2 + g (f1 - f2)   (default)   or   f1 g + f2   (no_gate);   h' = h where keep is false
 * With the same dt for every step and sample ("merged"), the gate's pre-activation is one head:
 * v_g = (Wb - dt Wa) z + (bb - dt ba), so the heads have 3H columns instead of 4H.
 *
 * Every sample's recurrence is independent of the others', so each thread runs the whole time loop
 * for its own rows of the batch: no synchronisation inside the loop. */

typedef REAL LF_SFX(vec) __attribute__((vector_size(LF_VBYTES)));
#define VEC LF_SFX(vec)
#define VW ((int64_t)(LF_VBYTES / sizeof(REAL)))

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
    int64_t H, K, I, backbone, nogate, off, nV; /* nV: head columns, 3H merged or 4H */
    int64_t act;                                 /* LF_CFC_ACT_* of the backbone */
    int64_t Kp, Vp, Hp, Ip;                      /* padded column counts (multiples of VW) */
    REAL *WxT, *WhT, *b, *HwT, *hb;              /* forward:  (I x Kp), (H x Kp), (Kp), (K x Vp), (Vp) */
    REAL *Wx, *Wh, *Hw;                          /* backward: (K x Ip), (K x Hp), (nV x Kp) */
    REAL *Z, *F, *G, *dU;                        /* saved (T,B,K), (T,B,2H), (T,B,H); output (T,B,K) or NULL */
    REAL *ZD;                                    /* saved act'(u) (T,B,K): gelu and silu, else NULL */
    REAL *gWxT, *gWhT, *gb, *gHwT, *ghb;         /* weight gradients in the parameters' shapes, or NULL */
    int64_t acc;                                 /* per-thread accumulator size of the weight gradients */
} LF_SFX(layer);

/* element (i, j) of a strided matrix or vector (j = 0) read in place */
#define LF_AT(m, i, j) ((const REAL *)(m).data)[(i) * (m).stride0 + (j) * (m).stride1]

/* padded copies of the weights (forward layout, and transposed for the backward pass); merged: the
 * gate head is (Wb - c Wa, bb - c ba) in columns 2H..3H. Returns the allocation (free it) or NULL. */
static REAL *LF_SFX(prepare)(int64_t L, const lf_cfc_layer *layers, LF_SFX(layer) *lay, int merged, REAL c,
                             int backward) {
    size_t total = 0;
    for (int64_t l = 0; l < L; l++) {
        const lf_cfc_layer *d = layers + l;
        LF_SFX(layer) *y = &lay[l];
        memset(y, 0, sizeof *y);
        y->H = d->hidden, y->K = d->width, y->I = d->in_size, y->backbone = d->backbone;
        y->nogate = d->no_gate, y->off = d->offset, y->act = d->activation;
        y->nV = (y->backbone && merged) ? 3 * y->H : 4 * y->H;
        y->Kp = lf_roundup(y->K, VW), y->Vp = lf_roundup(y->nV, VW);
        y->Hp = lf_roundup(y->H, VW), y->Ip = lf_roundup(y->I, VW);
        y->Z = (REAL *)d->z, y->F = (REAL *)d->f, y->G = (REAL *)d->g, y->ZD = (REAL *)d->zd;
        y->dU = (REAL *)d->grad_u;
        y->gWxT = (REAL *)d->grad_wx_t, y->gWhT = (REAL *)d->grad_wh_t, y->gb = (REAL *)d->grad_b;
        y->gHwT = (REAL *)d->grad_hw_t, y->ghb = (REAL *)d->grad_hb;
        /* accumulators: WxT (I x Kp), WhT (H x Kp), b (Kp), HwT (K x Vp), hb (Vp) */
        y->acc = (y->I + y->H + 1) * y->Kp + (y->backbone ? (y->K + 1) * y->Vp : 0);
        size_t n = (size_t)((y->I + y->H + 1) * y->Kp);
        if (y->backbone) n += (size_t)((y->K + 1) * y->Vp);
        if (backward) n += (size_t)(y->K * (y->Ip + y->Hp) + (y->backbone ? y->nV * y->Kp : 0));
        total += n;
    }
    REAL *mem = (REAL *)lf_alloc(total * sizeof(REAL));
    if (!mem) return NULL;
    REAL *p = mem;
    for (int64_t l = 0; l < L; l++) {
        const lf_cfc_layer *d = layers + l;
        LF_SFX(layer) *y = &lay[l];
        int64_t H = y->H, K = y->K;
        y->WxT = p, p += y->I * y->Kp;
        y->WhT = p, p += H * y->Kp;
        y->b = p, p += y->Kp;
        for (int64_t i = 0; i < y->I; i++)
            for (int64_t j = 0; j < K; j++) y->WxT[i * y->Kp + j] = LF_AT(d->wx_t, i, j);
        for (int64_t i = 0; i < H; i++)
            for (int64_t j = 0; j < K; j++) y->WhT[i * y->Kp + j] = LF_AT(d->wh_t, i, j);
        if (d->b.data)
            for (int64_t j = 0; j < K; j++) y->b[j] = LF_AT(d->b, j, 0);
        if (y->backbone) {
            y->HwT = p, p += K * y->Vp;
            y->hb = p, p += y->Vp;
            for (int64_t k = 0; k < K; k++) {
                REAL *row = y->HwT + k * y->Vp;
                for (int64_t j = 0; j < 4 * H; j++) {
                    REAL w = LF_AT(d->hw_t, k, j);
                    if (!merged) row[j] = w;
                    else if (j < 2 * H) row[j] = w;
                    else if (j < 3 * H) row[j] = -c * w; /* - c Wa, then + Wb below */
                    else row[j - H] += w;
                }
            }
            for (int64_t j = 0; j < 4 * H; j++) {
                REAL w = LF_AT(d->hb, j, 0);
                if (!merged || j < 2 * H) y->hb[j] = w;
                else if (j < 3 * H) y->hb[j] = -c * w;
                else y->hb[j - H] += w;
            }
        }
        if (backward) {
            y->Wx = p, p += K * y->Ip;
            y->Wh = p, p += K * y->Hp;
            for (int64_t k = 0; k < K; k++) {
                for (int64_t i = 0; i < y->I; i++) y->Wx[k * y->Ip + i] = y->WxT[i * y->Kp + k];
                for (int64_t i = 0; i < H; i++) y->Wh[k * y->Hp + i] = y->WhT[i * y->Kp + k];
            }
            if (y->backbone) {
                y->Hw = p, p += y->nV * y->Kp;
                for (int64_t j = 0; j < y->nV; j++)
                    for (int64_t k = 0; k < K; k++) y->Hw[j * y->Kp + k] = y->HwT[k * y->Vp + j];
            }
        }
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
                            int64_t b0, int64_t b1) {
    int64_t m = b1 - b0, Kmax = 0, Vmax = 0;
    for (int64_t l = 0; l < L; l++) {
        if (lay[l].Kp > Kmax) Kmax = lay[l].Kp;
        if (lay[l].Vp > Vmax) Vmax = lay[l].Vp;
    }
    REAL *U = (REAL *)lf_alloc((size_t)(m * (2 * Kmax + Vmax)) * sizeof(REAL));
    if (!U) return -1;
    REAL *Zs = U + m * Kmax, *V = Zs + m * Kmax; /* z when it is not saved; the heads */
    for (int64_t t = 0; t < T; t++) {
        for (int64_t l = 0; l < L; l++) {
            const LF_SFX(layer) *y = &lay[l];
            int64_t H = y->H, K = y->K, off = y->off;
            /* the state before this step, rows b0.. of (B, N) */
            const REAL *h = (t == 0 ? h0 : S + (t - 1) * B * N) + b0 * N + off;
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
            if (y->backbone) {
                REAL *z = y->Z ? y->Z + (t * B + b0) * K : Zs;
                REAL *zd = y->ZD ? y->ZD + (t * B + b0) * K : 0;
                for (int64_t r = 0; r < m; r++)
                    LF_SFX(act_row)(y->act, U + r * y->Kp, z + r * K, zd ? zd + r * K : 0, K);
                LF_SFX(mm)(m, y->Vp, K, z, K, y->HwT, y->Vp, V, y->Vp, 1, y->hb);
                v = V, ldv = y->Vp;
            } else {
                v = U, ldv = y->Kp;
            }
            for (int64_t r = 0; r < m; r++) {
                int64_t bi = b0 + r;
                const REAL *vr = v + r * ldv, *hr = h + r * N;
                REAL dt = ts[t * B + bi];
                REAL *o = out + r * N;
                REAL *Fr = y->F ? y->F + (t * B + bi) * 2 * H : 0, *Gr = y->G ? y->G + (t * B + bi) * H : 0;
                const REAL *va = vr + 2 * H, *vb = vr + (merged && y->backbone ? 2 * H : 3 * H);
                REAL ndt = (merged && y->backbone) ? 0 : -dt;
                int nogate = (int)y->nogate;
#pragma omp simd
                for (int64_t j = 0; j < H; j++) {
                    REAL f1 = LF_TANH(vr[j]), f2 = LF_TANH(vr[H + j]);
                    REAL g = LF_SIGMOID(vb[j] + ndt * va[j]);
                    o[j] = nogate ? f1 * g + f2 : f2 + g * (f1 - f2);
                    if (Fr) Fr[j] = f1, Fr[H + j] = f2, Gr[j] = g;
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
                            int merged, REAL *acc, int64_t b0, int64_t b1) {
    int64_t m = b1 - b0, Kmax = 0, Dmax = 0, Hsum = 0, Imax = 0;
    for (int64_t l = 0; l < L; l++) {
        const LF_SFX(layer) *y = &lay[l];
        if (y->Kp > Kmax) Kmax = y->Kp;
        if (y->Vp > Dmax) Dmax = y->Vp;
        if (y->Ip > Imax) Imax = y->Ip;
        Hsum += y->Hp;
    }
    if (Kmax > Dmax) Dmax = Kmax;
    size_t n = (size_t)(m * (2 * Kmax + Dmax + Hsum + Imax));
    REAL *dz = (REAL *)lf_alloc(n * sizeof(REAL));
    if (!dz) return -1;
    memset(dz, 0, n * sizeof(REAL)); /* the padding columns stay zero */
    REAL *DU = dz + m * Kmax, *D = DU + m * Kmax, *dhall = D + m * Dmax, *dy = dhall + m * Hsum;
    REAL *dh[LF_MAXL];
    for (int64_t l = 0, o = 0; l < L; l++) dh[l] = dhall + m * o, o += lay[l].Hp;
    for (int64_t t = T - 1; t >= 0; t--) {
        for (int64_t l = L - 1, ao = 0; l >= 0; l--) {
            const LF_SFX(layer) *y = &lay[l];
            int64_t H = y->H, K = y->K, Hp = y->Hp, Kp = y->Kp;
            int mg = merged && y->backbone, nogate = (int)y->nogate;
            /* gradient at the heads, D (m x ldd): at v (backbone) or directly at u */
            int64_t ldd = y->backbone ? y->Vp : Kp;
            REAL *Du = y->backbone ? DU : D; /* gradient at u (m x Kp) */
            for (int64_t r = 0; r < m; r++) {
                int64_t bi = b0 + r;
                const REAL *gs = gS + (t * B + bi) * N + y->off;
                const REAL *Fr = y->F + (t * B + bi) * 2 * H, *Gr = y->G + (t * B + bi) * H;
                const REAL *dyr = l + 1 < L ? dy + r * lay[l + 1].Ip : 0;
                REAL *dhr = dh[l] + r * Hp, *Dr = D + r * ldd;
                REAL dt = ts[t * B + bi];
                int kp = keep ? keep[t * B + bi] != 0 : 1;
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
                    Dr[j] = d1 * (1 - f1 * f1);
                    Dr[H + j] = d2 * (1 - f2 * f2);
                    if (mg) {
                        Dr[2 * H + j] = dgp;
                    } else {
                        Dr[2 * H + j] = -dt * dgp;
                        Dr[3 * H + j] = dgp;
                    }
                    dhr[j] = carry;
                }
            }
            /* this layer's accumulators (laid out from the last layer down, as the loop runs) */
            REAL *aWx = acc + ao, *aWh = aWx + y->I * Kp, *ab = aWh + H * Kp, *aHw = ab + Kp,
                 *ahb = aHw + (y->backbone ? K * y->Vp : 0);
            ao += y->acc;
            if (y->backbone) { /* du = (D Hw) act'(u) */
                const REAL *z = y->Z + (t * B + b0) * K;
                const REAL *zd = y->ZD ? y->ZD + (t * B + b0) * K : 0;
                LF_SFX(mm)(m, Kp, y->nV, D, ldd, y->Hw, Kp, dz, Kp, 0, 0);
                for (int64_t r = 0; r < m; r++)
                    LF_SFX(act_bwd_row)(y->act, dz + r * Kp, z + r * K, zd ? zd + r * K : 0, DU + r * Kp, K);
                if (y->gHwT) LF_SFX(mm_tn)(K, y->Vp, m, z, K, D, ldd, aHw, y->Vp); /* HwT += z^T D */
                if (y->ghb)
                    for (int64_t r = 0; r < m; r++)
#pragma omp simd
                        for (int64_t j = 0; j < y->Vp; j++) ahb[j] += D[r * ldd + j];
            }
            if (y->dU)
                for (int64_t r = 0; r < m; r++) memcpy(y->dU + (t * B + b0 + r) * K, Du + r * Kp, (size_t)K * sizeof(REAL));
            const REAL *h = (t == 0 ? h0 : S + (t - 1) * B * N) + b0 * N + y->off;
            if (y->gWhT) LF_SFX(mm_tn)(H, Kp, m, h, N, Du, Kp, aWh, Kp); /* WhT += h^T du */
            if (l > 0 && y->gWxT) {
                const REAL *yp = S + t * B * N + b0 * N + lay[l - 1].off;
                LF_SFX(mm_tn)(y->I, Kp, m, yp, N, Du, Kp, aWx, Kp); /* WxT += y_prev^T du */
            }
            if (l > 0 && y->gb)
                for (int64_t r = 0; r < m; r++)
#pragma omp simd
                    for (int64_t j = 0; j < Kp; j++) ab[j] += Du[r * Kp + j];
            LF_SFX(mm)(m, Hp, K, Du, Kp, y->Wh, Hp, dh[l], Hp, 2, 0); /* dh = carry + du Wh */
            if (l > 0) LF_SFX(mm)(m, y->Ip, K, Du, Kp, y->Wx, y->Ip, dy, y->Ip, 0, 0);
        }
    }
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

/* States S (T, B, N) of the chain. Returns 1 when the gate heads were merged (uniform dt, allowed
 * by merge_ok, some layer has a backbone), 0 when not, -1 when out of memory. */
int LF_SFX(lf_cfc_forward)(int64_t L, const lf_cfc_layer *layers, int64_t T, int64_t B, int64_t N, const REAL *P,
                           int64_t K0, const REAL *ts, const uint8_t *keep, const REAL *h0, REAL *S, int64_t merge_ok,
                           int64_t nt) {
    if (L < 1 || L > LF_MAXL) return -2;
    LF_SFX(layer) lay[LF_MAXL];
    int anyb = 0;
    for (int64_t l = 0; l < L; l++) anyb |= layers[l].backbone != 0;
    int merged = merge_ok && anyb && LF_SFX(uniform)(ts, T * B);
    REAL *mem = LF_SFX(prepare)(L, layers, lay, merged, merged ? ts[0] : 0, 0);
    if (!mem) return -1;
    int fail = 0;
    int nth = lf_threads(B, nt);
#pragma omp parallel num_threads(nth) reduction(| : fail)
    {
        int64_t b0, b1;
        lf_rows(B, &b0, &b1);
        if (b0 < b1) fail |= LF_SFX(fwd_rows)(L, lay, T, B, N, P, K0, ts, keep, h0, S, merged, b0, b1) != 0;
    }
    lf_free(mem);
    return fail ? -1 : merged;
}

/* The adjoint: dU_0 (T, B, K_0) = dP where asked for, gh0 (B, N), and the weight gradients asked
 * for (the grad_* fields of `layers`). `merged` as returned by the forward pass. Returns 0, or -1
 * when out of memory. */
int LF_SFX(lf_cfc_backward)(int64_t L, const lf_cfc_layer *layers, int64_t T, int64_t B, int64_t N, const REAL *ts,
                            const uint8_t *keep, const REAL *h0, const REAL *S, const REAL *gS, REAL *gh0,
                            int64_t merged, int64_t nt) {
    if (L < 1 || L > LF_MAXL) return -2;
    for (int64_t l = 0; l < L; l++) { /* the saved buffers the adjoint reads */
        const lf_cfc_layer *d = layers + l;
        int need_zd = d->activation == LF_CFC_ACT_GELU || d->activation == LF_CFC_ACT_SILU;
        if (!d->f || !d->g || (d->backbone && (!d->z || (need_zd && !d->zd)))) return -2;
    }
    LF_SFX(layer) lay[LF_MAXL];
    REAL c = merged ? ts[0] : 0;
    REAL *mem = LF_SFX(prepare)(L, layers, lay, (int)merged, c, 1);
    if (!mem) return -1;
    int nth = lf_threads(B, nt);
    int64_t stride = 0;
    for (int64_t l = 0; l < L; l++) stride += lay[l].acc;
    REAL *acc = (REAL *)lf_alloc((size_t)(nth * stride) * sizeof(REAL));
    if (!acc) {
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
            fail |= LF_SFX(bwd_rows)(L, lay, T, B, N, ts, keep, h0, S, gS, gh0, (int)merged, acc + tid * stride, b0,
                                     b1) != 0;
    }
    if (!fail) {
        for (int64_t l = L - 1, ao = 0; l >= 0; l--) { /* accumulators from the last layer down */
            const LF_SFX(layer) *y = &lay[l];
            const REAL *aWx = acc + ao, *aWh = aWx + y->I * y->Kp, *ab = aWh + y->H * y->Kp, *aHw = ab + y->Kp;
            const REAL *ahb = aHw + (y->backbone ? y->K * y->Vp : 0);
            ao += y->acc;
            if (l > 0 && y->gWxT) LF_SFX(reduce)(aWx, stride, nth, y->I, y->K, y->Kp, y->gWxT, 0, 0, 0);
            if (y->gWhT) LF_SFX(reduce)(aWh, stride, nth, y->H, y->K, y->Kp, y->gWhT, 0, 0, 0);
            if (l > 0 && y->gb) LF_SFX(reduce)(ab, stride, nth, 1, y->K, y->Kp, y->gb, 0, 0, 0);
            int mg = merged && y->backbone;
            if (y->backbone && y->gHwT) LF_SFX(reduce)(aHw, stride, nth, y->K, y->nV, y->Vp, y->gHwT, y->H, mg, c);
            if (y->backbone && y->ghb) LF_SFX(reduce)(ahb, stride, nth, 1, y->nV, y->Vp, y->ghb, y->H, mg, c);
        }
    }
    lf_free(acc);
    lf_free(mem);
    return fail ? -1 : 0;
}

#undef VEC
#undef VW
#undef LF_TILE_ROWS
#undef LF_AT
#undef LF_LECUN_A
#undef LF_LECUN_B
