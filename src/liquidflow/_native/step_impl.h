/* Body of step.c, included once per REAL (float, double); see step.c for the macros.
 *
 * Both kernels take
 *   cfg   int64 sizes and options (layout below, built once per layer in _native_step.py),
 *   P     the parameters' data pointers (raw values, read in place: no copies survive a call),
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
 * cfg: [L, act, mode, proj, N, I, then per sub-layer l: in_l, H_l, nbb_l, units_l]
 *   L sub-layers (1 for a CfCCell, the wiring's layers for a WiredCfCCell), act the backbone
 *   activation, mode 0 default / 1 no_gate / 2 pure, proj the fc outputs (0: no fc).
 * P per sub-layer: nbb_l (weight, bias) pairs of the backbone, then f1 (w, b), f2 (w, b),
 *   time_a (w, b), time_b (w, b) (pure mode: f1 (w, b), w_tau, A, 4 x NULL), then the sparsity
 *   mask (H, width) of f1 / f2 or NULL; after the last sub-layer fc (w, b).
 * Equations (docs/math.md, CfC): z = backbone([x, h]); f1 = tanh(W1 z + b1), f2 = tanh(W2 z + b2),
 *   g = sigmoid(-(Wa z + ba) dt + (Wb z + bb)); h' = f2 + g (f1 - f2) (default), f1 g + f2
 *   (no_gate); pure: h' = A - A exp(-dt (|w_tau| + |u|)) u with u = W1 z + b1. Sub-layer l of a
 *   wired cell sees the new state of sub-layer l - 1 as its input; y is the last sub-layer's state
 *   (through fc when proj > 0). */
int LF_SFX(lf_step_cfc)(const int64_t *cfg, void *const *P, const REAL *x, int64_t xld, const REAL *h,
                        const REAL *dt, int64_t dts, double dtc, REAL *y, REAL *hn, int64_t B) {
    const int64_t L = cfg[0], act = cfg[1], mode = cfg[2], proj = cfg[3], N = cfg[4], I = cfg[5];
    const int64_t *lc = cfg + 6;
    int rc = LF_SFX(lf_st_check)(x, xld, h, dt, dts, dtc, B, I, N);
    if (rc) return rc;
    int64_t wmax = 1, hmax = 1;
    for (int64_t l = 0; l < L; l++) {
        int64_t in = lc[4 * l], H = lc[4 * l + 1], units = lc[4 * l + 3];
        if (in + H > wmax) wmax = in + H;
        if (lc[4 * l + 2] > 0 && units > wmax) wmax = units;
        if (H > hmax) hmax = H;
    }
    REAL *buf = (REAL *)malloc(sizeof(REAL) * (size_t)(2 * wmax + 4 * hmax));
    if (!buf) return 3;
    REAL *za = buf, *zb = buf + wmax, *u = buf + 2 * wmax;
    for (int64_t b = 0; b < B; b++) {
        const REAL dtv = dt ? dt[b * dts] : (REAL)dtc;
        const REAL *inp = x + b * xld;
        const REAL *hr = h ? h + b * N : NULL;
        REAL *hnr = hn + b * N;
        int64_t in = I, off = 0;
        void *const *p = P;
        for (int64_t l = 0; l < L; l++) {
            const int64_t H = lc[4 * l + 1], nbb = lc[4 * l + 2], units = lc[4 * l + 3];
            /* z = [input, own state] */
            memcpy(za, inp, sizeof(REAL) * (size_t)in);
            if (hr)
                memcpy(za + in, hr + off, sizeof(REAL) * (size_t)H);
            else
                memset(za + in, 0, sizeof(REAL) * (size_t)H);
            REAL *z = za, *t = zb;
            int64_t width = in + H;
            for (int64_t k = 0; k < nbb; k++) { /* backbone layer k: z <- act(W z + b) */
                LF_SFX(lf_st_matvec)(t, (const REAL *)p[0], (const REAL *)p[1], NULL, z, units, width);
                LF_SFX(lf_st_activate)(t, units, act);
                REAL *s = z;
                z = t;
                t = s;
                width = units;
                p += 2;
            }
            const REAL *M = (const REAL *)p[8];
            REAL *out = hnr + off;
            if (mode == 2) {
                const REAL *wtau = (const REAL *)p[2], *A = (const REAL *)p[3];
                LF_SFX(lf_st_matvec)(u, (const REAL *)p[0], (const REAL *)p[1], M, z, H, width);
                for (int64_t o = 0; o < H; o++)
                    out[o] = A[o] - A[o] * LF_EXP(-dtv * (LF_ABS(wtau[o]) + LF_ABS(u[o]))) * u[o];
            } else {
                REAL *u1 = u, *u2 = u + hmax, *ua = u + 2 * hmax, *ub = u + 3 * hmax;
                LF_SFX(lf_st_matvec)(u1, (const REAL *)p[0], (const REAL *)p[1], M, z, H, width);
                LF_SFX(lf_st_matvec)(u2, (const REAL *)p[2], (const REAL *)p[3], M, z, H, width);
                LF_SFX(lf_st_matvec)(ua, (const REAL *)p[4], (const REAL *)p[5], NULL, z, H, width);
                LF_SFX(lf_st_matvec)(ub, (const REAL *)p[6], (const REAL *)p[7], NULL, z, H, width);
                if (mode == 0) {
#pragma omp simd
                    for (int64_t o = 0; o < H; o++) {
                        REAL f1 = LF_TANH(u1[o]), f2 = LF_TANH(u2[o]);
                        REAL g = LF_SIG(-ua[o] * dtv + ub[o]);
                        out[o] = f2 + g * (f1 - f2);
                    }
                } else {
#pragma omp simd
                    for (int64_t o = 0; o < H; o++) {
                        REAL f1 = LF_TANH(u1[o]), f2 = LF_TANH(u2[o]);
                        REAL g = LF_SIG(-ua[o] * dtv + ub[o]);
                        out[o] = f1 * g + f2;
                    }
                }
            }
            p += 9;
            inp = out;
            in = H;
            off += H;
        }
        if (proj > 0) /* fc on the last sub-layer's state */
            LF_SFX(lf_st_matvec)(y + b * proj, (const REAL *)p[0], (const REAL *)p[1], NULL, inp, proj, in);
    }
    free(buf);
    return 0;
}

/* ----------------------------------------------------------------------------------------- LTC
 * cfg: [N, I, M, unfolds, input_mapping, output_mapping, proj]; mappings 0 none, 1 linear, 2 affine.
 * P: gleak_raw, vleak, cm_raw, w_raw, sigma, mu, erev, sensory_w_raw, sensory_sigma, sensory_mu,
 *    sensory_erev, sparsity_mask, sensory_sparsity_mask, input_w, input_b, output_w, output_b,
 *    fc_w, fc_b (NULL where absent).
 * Equations (docs/math.md, LTC): positives by softplus (gleak, cm, w, sensory_w); inputs mapped
 * x' = x w_in + b_in; sensory conductances s_ij = sigmoid(sigma^s_ij (x'_i - mu^s_ij)) w^s_ij;
 * per unfold of length dt / unfolds (c = cm / (dt / unfolds)), with a_ij = sigmoid(sigma_ij (v_i - mu_ij)) w_ij:
 *   v_j <- (c_j v_j + gleak_j vleak_j + sum_i s_ij E^s_ij + sum_i a_ij E_ij)
 *          / (c_j + gleak_j + sum_i s_ij + sum_i a_ij + eps);
 * y = v[:M] w_out + b_out (then fc when proj > 0). */
int LF_SFX(lf_step_ltc)(const int64_t *cfg, void *const *P, const REAL *x, int64_t xld, const REAL *h, const REAL *dt,
                        int64_t dts, double dtc, REAL *y, REAL *hn, int64_t B, double eps) {
    const int64_t N = cfg[0], I = cfg[1], M = cfg[2], L = cfg[3], imap = cfg[4], omap = cfg[5], proj = cfg[6];
    int rc = LF_SFX(lf_st_check)(x, xld, h, dt, dts, dtc, B, I, N);
    if (rc) return rc;
    const REAL *gleak_raw = (const REAL *)P[0], *vleak = (const REAL *)P[1], *cm_raw = (const REAL *)P[2];
    const REAL *w_raw = (const REAL *)P[3], *sigma = (const REAL *)P[4], *mu = (const REAL *)P[5];
    const REAL *erev = (const REAL *)P[6], *sw_raw = (const REAL *)P[7], *ssigma = (const REAL *)P[8];
    const REAL *smu = (const REAL *)P[9], *serev = (const REAL *)P[10], *mask = (const REAL *)P[11];
    const REAL *smask = (const REAL *)P[12], *in_w = (const REAL *)P[13], *in_b = (const REAL *)P[14];
    const REAL *out_w = (const REAL *)P[15], *out_b = (const REAL *)P[16];
    const REAL *fc_w = (const REAL *)P[17], *fc_b = (const REAL *)P[18];
    const int64_t NN = N * N, IN = I * N;
    REAL *buf = (REAL *)malloc(sizeof(REAL) * (size_t)(2 * NN + 2 * IN + 8 * N + I + M));
    if (!buf) return 3;
    REAL *w = buf, *we = w + NN, *sw = we + NN, *swe = sw + IN;
    REAL *gl = swe + IN, *cm = gl + N, *bn = cm + N, *bd = bn + N, *c = bd + N, *num = c + N, *den = num + N;
    REAL *v = den + N, *xm = v + N, *ym = xm + I;
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
    for (int64_t b = 0; b < B; b++) {
        const REAL dtv = dt ? dt[b * dts] : (REAL)dtc;
        const REAL sub = dtv / (REAL)L;
        const REAL *xr = x + b * xld;
        for (int64_t i = 0; i < I; i++) {
            REAL xi = xr[i];
            if (imap >= 1) xi = xi * in_w[i];
            if (imap == 2) xi = xi + in_b[i];
            xm[i] = xi;
        }
        /* sensory synapses: numerator and denominator sums over the inputs */
        for (int64_t j = 0; j < N; j++) num[j] = den[j] = 0;
        for (int64_t i = 0; i < I; i++) {
            const REAL xi = xm[i];
            const REAL *sg = ssigma + i * N, *sm = smu + i * N, *a1 = swe + i * N, *a2 = sw + i * N;
#pragma omp simd
            for (int64_t j = 0; j < N; j++) {
                REAL a = LF_SIG(sg[j] * (xi - sm[j]));
                num[j] += a * a1[j];
                den[j] += a * a2[j];
            }
        }
        for (int64_t j = 0; j < N; j++) {
            bn[j] = num[j] + gl[j] * vleak[j];
            bd[j] = den[j] + (gl[j] + (REAL)eps);
            c[j] = cm[j] / sub;
            v[j] = h ? h[b * N + j] : (REAL)0;
        }
        for (int64_t it = 0; it < L; it++) {
            for (int64_t j = 0; j < N; j++) {
                num[j] = bn[j];
                den[j] = bd[j] + c[j];
            }
            for (int64_t i = 0; i < N; i++) { /* presynaptic i -> postsynaptic j */
                const REAL vi = v[i];
                const REAL *sg = sigma + i * N, *m = mu + i * N, *a1 = we + i * N, *a2 = w + i * N;
#pragma omp simd
                for (int64_t j = 0; j < N; j++) {
                    REAL a = LF_SIG(sg[j] * (vi - m[j]));
                    num[j] += a * a1[j];
                    den[j] += a * a2[j];
                }
            }
#pragma omp simd
            for (int64_t j = 0; j < N; j++) v[j] = (num[j] + c[j] * v[j]) / den[j];
        }
        memcpy(hn + b * N, v, sizeof(REAL) * (size_t)N);
        REAL *yr = proj > 0 ? ym : y + b * M;
        for (int64_t m = 0; m < M; m++) {
            REAL o = v[m];
            if (omap >= 1) o = o * out_w[m];
            if (omap == 2) o = o + out_b[m];
            yr[m] = o;
        }
        if (proj > 0) LF_SFX(lf_st_matvec)(y + b * proj, fc_w, fc_b, NULL, ym, proj, M);
    }
    free(buf);
    return 0;
}
