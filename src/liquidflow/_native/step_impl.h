/* Body of step.c, included once per REAL (float, double); see step.c for the macros.
 *
 * Both kernels take
 *   plan  the layer's struct (lf_abi.h: lf_step_cfc_plan, lf_step_ltc_plan) built once per layer in
 *         _native_step.py: sizes, options and the parameters' data pointers (raw values, read in
 *         place: no copies survive a call; NULL where absent),
 *   x     (B, I) input rows, row stride xld;  h (B, N) state or NULL (zeros);
 *   dt    per-row elapsed time with stride dts, or NULL (then the scalar dtc for every row);
 *   y     the output (B, out);  hn the new state (B, N).
 * and return 0, or 1 when x or h holds NaN/Inf, 2 when an elapsed time is not finite and > 0,
 * 3 when scratch memory cannot be allocated. Everything is checked before anything is computed;
 * the Python side then hands the call to the torch path, which raises the error. */

/* ------------------------------------------------------------------------------------- helpers */
static inline int LF_SFX(lf_st_nonfinite)(const REAL *x, int64_t n) {
    REAL s = 0; /* x - x is 0 for finite x, NaN for NaN and +-Inf */
#pragma omp simd reduction(+ : s)
    for (int64_t k = 0; k < n; k++) s += x[k] - x[k];
    return s != s;
}

static inline int LF_SFX(lf_st_check)(const REAL *x, int64_t xld, const REAL *h, const REAL *dt, int64_t dts,
                                      double dtc, int64_t B, int64_t I, int64_t N) {
    for (int64_t b = 0; b < B; b++) {
        if (LF_SFX(lf_st_nonfinite)(x + b * xld, I)) return 1;
        if (h && LF_SFX(lf_st_nonfinite)(h + b * N, N)) return 1;
        double d = dt ? (double)dt[b * dts] : dtc;
        if (!(d > 0.0 && d < INFINITY)) return 2;
    }
    return 0;
}

/* out[o] = b[o] + sum_k (W[o, k] M[o, k]) z[k] for o < rows: W (rows, n) row-major, M an optional
 * mask of the same shape, b optional. Four rows at a time share the loads of z. */
static void LF_SFX(lf_st_matvec)(REAL *out, const REAL *W, const REAL *b, const REAL *M, const REAL *z, int64_t rows,
                                 int64_t n) {
    int64_t o = 0;
    if (!M) {
        for (; o + 4 <= rows; o += 4) {
            const REAL *w0 = W + o * n, *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
            REAL s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
            for (int64_t k = 0; k < n; k++) {
                REAL zk = z[k];
                s0 += w0[k] * zk;
                s1 += w1[k] * zk;
                s2 += w2[k] * zk;
                s3 += w3[k] * zk;
            }
            out[o] = (b ? b[o] : 0) + s0;
            out[o + 1] = (b ? b[o + 1] : 0) + s1;
            out[o + 2] = (b ? b[o + 2] : 0) + s2;
            out[o + 3] = (b ? b[o + 3] : 0) + s3;
        }
    }
    for (; o < rows; o++) {
        const REAL *w = W + o * n;
        REAL s = 0;
        if (M) {
            const REAL *m = M + o * n;
#pragma omp simd reduction(+ : s)
            for (int64_t k = 0; k < n; k++) s += (w[k] * m[k]) * z[k];
        } else {
#pragma omp simd reduction(+ : s)
            for (int64_t k = 0; k < n; k++) s += w[k] * z[k];
        }
        out[o] = (b ? b[o] : 0) + s;
    }
}

/* The same for R <= LF_STEP_ROWS input rows at once (Z (R, n) with row stride ldz; out (R, rows)
 * with row stride ldo): each weight row is loaded once for all R rows of the block. */
static void LF_SFX(lf_st_matrows)(REAL *out, int64_t ldo, const REAL *W, const REAL *b, const REAL *M, const REAL *Z,
                                  int64_t ldz, int64_t R, int64_t rows, int64_t n) {
    if (R != 4) {
        for (int64_t r = 0; r < R; r++) LF_SFX(lf_st_matvec)(out + r * ldo, W, b, M, Z + r * ldz, rows, n);
        return;
    }
    const REAL *z0 = Z, *z1 = Z + ldz, *z2 = Z + 2 * ldz, *z3 = Z + 3 * ldz;
    int64_t o = 0;
    for (; o + 2 <= rows; o += 2) {
        const REAL *w0 = W + o * n, *w1 = w0 + n;
        const REAL *m0 = M ? M + o * n : NULL, *m1 = M ? m0 + n : NULL;
        REAL a0 = 0, a1 = 0, a2 = 0, a3 = 0, c0 = 0, c1 = 0, c2 = 0, c3 = 0;
        if (M) {
#pragma omp simd reduction(+ : a0, a1, a2, a3, c0, c1, c2, c3)
            for (int64_t k = 0; k < n; k++) {
                REAL v0 = w0[k] * m0[k], v1 = w1[k] * m1[k];
                a0 += v0 * z0[k], a1 += v0 * z1[k], a2 += v0 * z2[k], a3 += v0 * z3[k];
                c0 += v1 * z0[k], c1 += v1 * z1[k], c2 += v1 * z2[k], c3 += v1 * z3[k];
            }
        } else {
#pragma omp simd reduction(+ : a0, a1, a2, a3, c0, c1, c2, c3)
            for (int64_t k = 0; k < n; k++) {
                REAL v0 = w0[k], v1 = w1[k];
                a0 += v0 * z0[k], a1 += v0 * z1[k], a2 += v0 * z2[k], a3 += v0 * z3[k];
                c0 += v1 * z0[k], c1 += v1 * z1[k], c2 += v1 * z2[k], c3 += v1 * z3[k];
            }
        }
        REAL b0 = b ? b[o] : 0, b1 = b ? b[o + 1] : 0;
        out[o] = b0 + a0, out[ldo + o] = b0 + a1, out[2 * ldo + o] = b0 + a2, out[3 * ldo + o] = b0 + a3;
        out[o + 1] = b1 + c0, out[ldo + o + 1] = b1 + c1, out[2 * ldo + o + 1] = b1 + c2;
        out[3 * ldo + o + 1] = b1 + c3;
    }
    if (o < rows) /* the last weight row */
        for (int64_t r = 0; r < 4; r++)
            LF_SFX(lf_st_matvec)(out + r * ldo + o, W + o * n, b ? b + o : NULL, M ? M + o * n : NULL, Z + r * ldz, 1, n);
}

/* backbone activations, codes as in _native_step._ACTIVATIONS */
static void LF_SFX(lf_st_activate)(REAL *z, int64_t n, int64_t act) {
    switch (act) {
    case 0: /* lecun_tanh: 1.7159 tanh(0.666 z) */
#pragma omp simd
        for (int64_t k = 0; k < n; k++) z[k] = (REAL)1.7159 * LF_TANH((REAL)0.666 * z[k]);
        break;
    case 1:
#pragma omp simd
        for (int64_t k = 0; k < n; k++) z[k] = LF_TANH(z[k]);
        break;
    case 2: /* relu */
        for (int64_t k = 0; k < n; k++) z[k] = z[k] > 0 ? z[k] : (REAL)0;
        break;
    case 3: /* gelu (erf form, torch's default) */
        for (int64_t k = 0; k < n; k++) z[k] = z[k] * (REAL)0.5 * ((REAL)1 + LF_ERF(z[k] * (REAL)M_SQRT1_2));
        break;
    default: /* silu: z sigmoid(z) */
#pragma omp simd
        for (int64_t k = 0; k < n; k++) z[k] = z[k] / ((REAL)1 + LF_EXP(-z[k]));
        break;
    }
}

/* ----------------------------------------------------------------------------------------- CfC
 * plan (lf_step_cfc_plan): `layers` sub-layers (1 for a CfCCell, the wiring's layers for a
 *   WiredCfCCell), the backbone activation, mode 0 default / 1 no_gate / 2 pure, proj the fc
 *   outputs (0: no fc); per sub-layer (lf_step_cfc_layer) its backbone's linear maps, f1, f2,
 *   time_a, time_b (pure mode: f1, w_tau, A), and the sparsity mask (H, width) of f1 / f2 or NULL.
 * Equations (docs/math.md, CfC): z = backbone([x, h]); f1 = tanh(W1 z + b1), f2 = tanh(W2 z + b2),
 *   g = sigmoid(-(Wa z + ba) dt + (Wb z + bb)); h' = f2 + g (f1 - f2) (default), f1 g + f2
 *   (no_gate); pure: h' = A - A exp(-dt (|w_tau| + |u|)) u with u = W1 z + b1. Sub-layer l of a
 *   wired cell sees the new state of sub-layer l - 1 as its input; y is the last sub-layer's state
 *   (through fc when proj > 0).
 * Batch rows go in blocks of LF_STEP_ROWS (weights loaded once per block); blocks are split over
 * nt OpenMP threads (nt = 1 for small batches: a fork costs more than a batch-1 step). */
static void LF_SFX(lf_st_cfc_block)(const lf_step_cfc_plan *plan, const REAL *x, int64_t xld, const REAL *h,
                                    const REAL *dt, int64_t dts, double dtc, REAL *y, REAL *hn, int64_t R,
                                    int64_t wmax, int64_t hmax, REAL *buf) {
    const int64_t L = plan->layers, act = plan->activation, mode = plan->mode, proj = plan->proj;
    const int64_t N = plan->state_size, I = plan->in_size;
    REAL *za = buf, *zb = za + LF_STEP_ROWS * wmax, *u = zb + LF_STEP_ROWS * wmax;
    const int64_t ldu = 4 * hmax;
    REAL dtv[LF_STEP_ROWS];
    for (int64_t r = 0; r < R; r++) dtv[r] = dt ? dt[r * dts] : (REAL)dtc;
    int64_t in = I, off = 0, in_off = 0;
    const REAL *inp = x; /* the input rows of the current sub-layer, row stride ild */
    int64_t ild = xld;
    for (int64_t l = 0; l < L; l++) {
        const lf_step_cfc_layer *c = plan->layer + l;
        const int64_t H = c->hidden, nbb = c->backbone_layers, units = c->backbone_units;
        for (int64_t r = 0; r < R; r++) { /* z = [input, own state] */
            memcpy(za + r * wmax, inp + r * ild + in_off, sizeof(REAL) * (size_t)in);
            if (h)
                memcpy(za + r * wmax + in, h + r * N + off, sizeof(REAL) * (size_t)H);
            else
                memset(za + r * wmax + in, 0, sizeof(REAL) * (size_t)H);
        }
        REAL *z = za, *t = zb;
        int64_t width = in + H;
        for (int64_t k = 0; k < nbb; k++) { /* backbone layer k: z <- act(W z + b) */
            const lf_step_linear *bb = c->backbone + k;
            LF_SFX(lf_st_matrows)(t, wmax, LF_PTR(bb->weight), LF_PTR(bb->bias), NULL, z, wmax, R, units, width);
            for (int64_t r = 0; r < R; r++) LF_SFX(lf_st_activate)(t + r * wmax, units, act);
            REAL *s = z;
            z = t;
            t = s;
            width = units;
        }
        const REAL *M = LF_PTR(c->sparsity_mask);
        if (mode == 2) {
            const REAL *wtau = LF_PTR(c->w_tau), *A = LF_PTR(c->a);
            LF_SFX(lf_st_matrows)(u, ldu, LF_PTR(c->f1.weight), LF_PTR(c->f1.bias), M, z, wmax, R, H, width);
            for (int64_t r = 0; r < R; r++) {
                const REAL *ur = u + r * ldu, d = dtv[r];
                REAL *out = hn + r * N + off;
                for (int64_t o = 0; o < H; o++)
                    out[o] = A[o] - A[o] * LF_EXP(-d * (LF_ABS(wtau[o]) + LF_ABS(ur[o]))) * ur[o];
            }
        } else {
            const lf_step_linear *f1 = &c->f1, *f2 = &c->f2, *ta = &c->time_a, *tb = &c->time_b;
            LF_SFX(lf_st_matrows)(u, ldu, LF_PTR(f1->weight), LF_PTR(f1->bias), M, z, wmax, R, H, width);
            LF_SFX(lf_st_matrows)(u + hmax, ldu, LF_PTR(f2->weight), LF_PTR(f2->bias), M, z, wmax, R, H, width);
            LF_SFX(lf_st_matrows)(u + 2 * hmax, ldu, LF_PTR(ta->weight), LF_PTR(ta->bias), NULL, z, wmax, R, H, width);
            LF_SFX(lf_st_matrows)(u + 3 * hmax, ldu, LF_PTR(tb->weight), LF_PTR(tb->bias), NULL, z, wmax, R, H, width);
            for (int64_t r = 0; r < R; r++) {
                const REAL *u1 = u + r * ldu, *u2 = u1 + hmax, *ua = u2 + hmax, *ub = ua + hmax, d = dtv[r];
                REAL *out = hn + r * N + off;
                if (mode == 0) {
#pragma omp simd
                    for (int64_t o = 0; o < H; o++) {
                        REAL f1 = LF_TANH(u1[o]), f2 = LF_TANH(u2[o]);
                        REAL g = LF_SIG(-ua[o] * d + ub[o]);
                        out[o] = f2 + g * (f1 - f2);
                    }
                } else {
#pragma omp simd
                    for (int64_t o = 0; o < H; o++) {
                        REAL f1 = LF_TANH(u1[o]), f2 = LF_TANH(u2[o]);
                        REAL g = LF_SIG(-ua[o] * d + ub[o]);
                        out[o] = f1 * g + f2;
                    }
                }
            }
        }
        inp = hn; /* the next sub-layer reads this one's new state */
        ild = N;
        in_off = off;
        in = H;
        off += H;
    }
    if (proj > 0) /* fc on the last sub-layer's state */
        LF_SFX(lf_st_matrows)(y, proj, LF_PTR(plan->fc.weight), LF_PTR(plan->fc.bias), NULL, hn + in_off, N, R, proj,
                              in);
}

int LF_SFX(lf_step_cfc)(const lf_step_cfc_plan *plan, const REAL *x, int64_t xld, const REAL *h, const REAL *dt,
                        int64_t dts, double dtc, REAL *y, REAL *hn, int64_t B, int64_t nt) {
    const int64_t L = plan->layers, proj = plan->proj, N = plan->state_size, I = plan->in_size;
    int rc = LF_SFX(lf_st_check)(x, xld, h, dt, dts, dtc, B, I, N);
    if (rc) return rc;
    int64_t wmax = 1, hmax = 1;
    for (int64_t l = 0; l < L; l++) {
        const lf_step_cfc_layer *c = plan->layer + l;
        int64_t in = c->in_size, H = c->hidden, units = c->backbone_units;
        if (in + H > wmax) wmax = in + H;
        if (c->backbone_layers > 0 && units > wmax) wmax = units;
        if (H > hmax) hmax = H;
    }
    const int64_t need = LF_STEP_ROWS * (2 * wmax + 4 * hmax), blocks = (B + LF_STEP_ROWS - 1) / LF_STEP_ROWS;
    if (nt > blocks) nt = blocks;
    if (nt <= 1) { /* no parallel region at all: entering one costs about a µs even when serial */
        REAL small[LF_STEP_STACK];
        REAL *buf = need <= LF_STEP_STACK ? small : (REAL *)malloc(sizeof(REAL) * (size_t)need);
        if (!buf) return 3;
        for (int64_t b = 0; b < B; b += LF_STEP_ROWS)
            LF_SFX(lf_st_cfc_block)(plan, x + b * xld, xld, h ? h + b * N : NULL, dt ? dt + b * dts : NULL, dts, dtc,
                                    proj > 0 ? y + b * proj : NULL, hn + b * N,
                                    B - b < LF_STEP_ROWS ? B - b : LF_STEP_ROWS, wmax, hmax, buf);
        if (buf != small) free(buf);
        return 0;
    }
    int failed = 0;
#pragma omp parallel num_threads(nt) reduction(| : failed)
    {
        REAL small[LF_STEP_STACK];
        REAL *buf = need <= LF_STEP_STACK ? small : (REAL *)malloc(sizeof(REAL) * (size_t)need);
        if (!buf) {
            failed = 1;
        } else {
#pragma omp for schedule(static)
            for (int64_t blk = 0; blk < blocks; blk++) {
                const int64_t b = blk * LF_STEP_ROWS, R = B - b < LF_STEP_ROWS ? B - b : LF_STEP_ROWS;
                LF_SFX(lf_st_cfc_block)(plan, x + b * xld, xld, h ? h + b * N : NULL, dt ? dt + b * dts : NULL, dts, dtc,
                                        proj > 0 ? y + b * proj : NULL, hn + b * N, R, wmax, hmax, buf);
            }
            if (buf != small) free(buf);
        }
    }
    return failed ? 3 : 0;
}

/* ----------------------------------------------------------------------------------------- LTC
 * plan (lf_step_ltc_plan): sizes N, I, M, unfolds, the mappings (0 none, 1 linear, 2 affine), the fc
 *    outputs (0: no fc), epsilon, and the cell's raw parameters (NULL where absent).
 * Equations (docs/math.md, LTC): positives by softplus (gleak, cm, w, sensory_w); inputs mapped
 * x' = x w_in + b_in; sensory conductances s_ij = sigmoid(sigma^s_ij (x'_i - mu^s_ij)) w^s_ij;
 * per unfold of length dt / unfolds (c = cm / (dt / unfolds)), with a_ij = sigmoid(sigma_ij (v_i - mu_ij)) w_ij:
 *   v_j <- (c_j v_j + gleak_j vleak_j + sum_i s_ij E^s_ij + sum_i a_ij E_ij)
 *          / (c_j + gleak_j + sum_i s_ij + sum_i a_ij + eps);
 * y = v[:M] w_out + b_out (then fc when proj > 0). The tables of effective parameters are made
 * once per call; batch rows are split over nt OpenMP threads (nt = 1 for small batches). */
typedef struct {
    int64_t N, I, M, L, imap, omap, proj, xld, dts;
    double eps, dtc;
    const REAL *x, *h, *dt, *vleak, *sigma, *mu, *ssigma, *smu, *in_w, *in_b, *out_w, *out_b, *fc_w, *fc_b;
    const REAL *w, *we, *sw, *swe, *gl, *cm; /* the tables made once per call */
    REAL *y, *hn;
} LF_SFX(lf_st_ltc_args);

/* num_j += sum_i s_ij we_ij, den_j += sum_i s_ij w_ij with s_ij = sigmoid(sigma_ij (u_i - mu_ij)), over
 * tables (n_in, N) [presynaptic i][postsynaptic j]: the sensory and the recurrent synapses */
LF_HOT void LF_SFX(lf_st_synapses)(int64_t n_in, int64_t N, const REAL *restrict u, const REAL *restrict sigma,
                                   const REAL *restrict mu, const REAL *restrict we, const REAL *restrict w,
                                   REAL *restrict num, REAL *restrict den) {
    for (int64_t i = 0; i < n_in; i++) {
        const REAL ui = u[i];
        const REAL *sg = sigma + i * N, *m = mu + i * N, *a1 = we + i * N, *a2 = w + i * N;
#pragma omp simd
        for (int64_t j = 0; j < N; j++) {
            REAL s = LF_SIG(sg[j] * (ui - m[j]));
            num[j] += s * a1[j];
            den[j] += s * a2[j];
        }
    }
}

/* batch rows [b0, b1) of an LTC step; rbuf holds 6 N + I + M values */
static void LF_SFX(lf_st_ltc_rows)(const LF_SFX(lf_st_ltc_args) *a, int64_t b0, int64_t b1, REAL *rbuf) {
    const int64_t N = a->N, I = a->I, M = a->M, L = a->L, imap = a->imap, omap = a->omap, proj = a->proj;
    const REAL *sigma = a->sigma, *mu = a->mu, *ssigma = a->ssigma, *smu = a->smu;
    const REAL *w = a->w, *we = a->we, *sw = a->sw, *swe = a->swe, *gl = a->gl, *cm = a->cm;
    REAL *bn = rbuf, *bd = bn + N, *c = bd + N, *num = c + N, *den = num + N, *v = den + N;
    REAL *xm = v + N, *ym = xm + I;
    for (int64_t b = b0; b < b1; b++) {
        const REAL dtv = a->dt ? a->dt[b * a->dts] : (REAL)a->dtc;
        const REAL sub = dtv / (REAL)L;
        const REAL *xr = a->x + b * a->xld;
        for (int64_t i = 0; i < I; i++) {
            REAL xi = xr[i];
            if (imap >= 1) xi = xi * a->in_w[i];
            if (imap == 2) xi = xi + a->in_b[i];
            xm[i] = xi;
        }
        /* sensory synapses: numerator and denominator sums over the inputs */
        for (int64_t j = 0; j < N; j++) num[j] = den[j] = 0;
        LF_SFX(lf_st_synapses)(I, N, xm, ssigma, smu, swe, sw, num, den);
        for (int64_t j = 0; j < N; j++) {
            bn[j] = num[j] + gl[j] * a->vleak[j];
            bd[j] = den[j] + (gl[j] + (REAL)a->eps);
            c[j] = cm[j] / sub;
            v[j] = a->h ? a->h[b * N + j] : (REAL)0;
        }
        for (int64_t it = 0; it < L; it++) {
            for (int64_t j = 0; j < N; j++) {
                num[j] = bn[j];
                den[j] = bd[j] + c[j];
            }
            LF_SFX(lf_st_synapses)(N, N, v, sigma, mu, we, w, num, den);
#pragma omp simd
            for (int64_t j = 0; j < N; j++) v[j] = (num[j] + c[j] * v[j]) / den[j];
        }
        memcpy(a->hn + b * N, v, sizeof(REAL) * (size_t)N);
        REAL *yr = proj > 0 ? ym : a->y + b * M;
        for (int64_t m = 0; m < M; m++) {
            REAL o = v[m];
            if (omap >= 1) o = o * a->out_w[m];
            if (omap == 2) o = o + a->out_b[m];
            yr[m] = o;
        }
        if (proj > 0) LF_SFX(lf_st_matvec)(a->y + b * proj, a->fc_w, a->fc_b, NULL, ym, proj, M);
    }
}

int LF_SFX(lf_step_ltc)(const lf_step_ltc_plan *plan, const REAL *x, int64_t xld, const REAL *h, const REAL *dt,
                        int64_t dts, double dtc, REAL *y, REAL *hn, int64_t B, int64_t nt) {
    const int64_t N = plan->state_size, I = plan->in_size, M = plan->motor_size;
    int rc = LF_SFX(lf_st_check)(x, xld, h, dt, dts, dtc, B, I, N);
    if (rc) return rc;
    const REAL *gleak_raw = LF_PTR(plan->gleak_raw), *cm_raw = LF_PTR(plan->cm_raw), *w_raw = LF_PTR(plan->w_raw);
    const REAL *erev = LF_PTR(plan->erev), *sw_raw = LF_PTR(plan->sensory_w_raw);
    const REAL *serev = LF_PTR(plan->sensory_erev), *mask = LF_PTR(plan->sparsity_mask);
    const REAL *smask = LF_PTR(plan->sensory_sparsity_mask);
    const int64_t NN = N * N, IN = I * N;
    REAL small[LF_STEP_STACK];
    const int64_t need = 2 * NN + 2 * IN + 2 * N;
    REAL *buf = need <= LF_STEP_STACK ? small : (REAL *)malloc(sizeof(REAL) * (size_t)need);
    if (!buf) return 3;
    REAL *w = buf, *we = w + NN, *sw = we + NN, *swe = sw + IN, *gl = swe + IN, *cm = gl + N;
    /* effective synapse tables, once per call: w = softplus(w_raw) mask, w E */
#pragma omp simd
    for (int64_t k = 0; k < NN; k++) {
        w[k] = LF_SOFTPLUS(w_raw[k]) * mask[k];
        we[k] = w[k] * erev[k];
    }
#pragma omp simd
    for (int64_t k = 0; k < IN; k++) {
        sw[k] = LF_SOFTPLUS(sw_raw[k]) * smask[k];
        swe[k] = sw[k] * serev[k];
    }
#pragma omp simd
    for (int64_t j = 0; j < N; j++) {
        gl[j] = LF_SOFTPLUS(gleak_raw[j]);
        cm[j] = LF_SOFTPLUS(cm_raw[j]);
    }
    const LF_SFX(lf_st_ltc_args) a = {
        .N = N, .I = I, .M = M, .L = plan->unfolds, .imap = plan->input_mapping, .omap = plan->output_mapping,
        .proj = plan->proj, .xld = xld, .dts = dts, .eps = plan->epsilon, .dtc = dtc, .x = x, .h = h, .dt = dt,
        .vleak = LF_PTR(plan->vleak), .sigma = LF_PTR(plan->sigma), .mu = LF_PTR(plan->mu),
        .ssigma = LF_PTR(plan->sensory_sigma), .smu = LF_PTR(plan->sensory_mu), .in_w = LF_PTR(plan->input_w),
        .in_b = LF_PTR(plan->input_b), .out_w = LF_PTR(plan->output_w), .out_b = LF_PTR(plan->output_b),
        .fc_w = LF_PTR(plan->fc.weight), .fc_b = LF_PTR(plan->fc.bias), .w = w, .we = we, .sw = sw, .swe = swe,
        .gl = gl, .cm = cm, .y = y, .hn = hn};
    const int64_t rneed = 6 * N + I + M;
    if (nt > B) nt = B;
    int failed = 0;
    if (nt <= 1) { /* no parallel region at all: entering one costs about a µs even when serial */
        REAL rsmall[LF_STEP_STACK / 4];
        REAL *rbuf = rneed <= LF_STEP_STACK / 4 ? rsmall : (REAL *)malloc(sizeof(REAL) * (size_t)rneed);
        if (rbuf) LF_SFX(lf_st_ltc_rows)(&a, 0, B, rbuf);
        failed = !rbuf;
        if (rbuf && rbuf != rsmall) free(rbuf);
    } else {
        /* batch rows split in nt contiguous chunks, each thread with its own row scratch */
#pragma omp parallel num_threads(nt) reduction(| : failed)
        {
            const int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
            const int64_t b0 = B * t / n, b1 = B * (t + 1) / n;
            REAL rsmall[LF_STEP_STACK / 4];
            REAL *rbuf = rneed <= LF_STEP_STACK / 4 ? rsmall : (REAL *)malloc(sizeof(REAL) * (size_t)rneed);
            if (rbuf) LF_SFX(lf_st_ltc_rows)(&a, b0, b1, rbuf);
            failed = !rbuf;
            if (rbuf && rbuf != rsmall) free(rbuf);
        }
    }
    if (buf != small) free(buf);
    return failed ? 3 : 0;
}

/* the template's parameters, defined by step.c before each inclusion */
#undef REAL
#undef LF_SFX
#undef LF_EXP
#undef LF_SIG
#undef LF_TANH
#undef LF_SOFTPLUS
#undef LF_ERF
#undef LF_ABS
