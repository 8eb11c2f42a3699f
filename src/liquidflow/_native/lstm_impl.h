/* The mixed-memory LSTM step (liquidflow.torch MixedMemoryLSTMCell, ncps' LSTMCell) and its adjoint,
 * for kernels that run it inside their own time loop before the liquid cell's step (cfc_impl.h; the
 * LTC kernel may include it the same way).
 *
 * Include it after defining REAL (float or double), LF_SFX(name) (the suffix of the functions:
 * name##_f32 / name##_f64), LF_TANH and LF_SIGMOID; it may be included once per REAL. Every function
 * works on m rows (the caller's share of the batch) through plain pointers with row strides (ld*,
 * in elements), reads nothing else and allocates nothing, so it runs inside an OpenMP thread.
 *
 * One step, for each row (N = hidden size; the input part of the gates is precomputed for all steps):
 *     z  = pre + h R^T           pre (4N): W_x x + b;  R (4N, N): the recurrent weight (no bias)
 *     [zi, zig, zfg, zog] = split(z, 4)
 *     gates = [tanh(zi), sigmoid(zig), sigmoid(zfg + 1), sigmoid(zog)]   (saved for the adjoint)
 *     c' = c sigmoid(zfg + 1) + tanh(zi) sigmoid(zig);   h' = tanh(c') sigmoid(zog)
 * Masking (a step not observed keeps h and c) is the caller's. */

/* From the gates' pre-activations z (m x ldz, 4N used): the gates (m x ldg), c_new (m x ldcn) and
 * h_new (m x ldhn) for m rows. c_new and h_new may not alias c. (A caller with its own matrix
 * product computes z = pre + h R^T itself and calls this; lstm_step_fwd does both.) */
static inline void LF_SFX(lstm_gates_fwd)(int64_t m, int64_t N, const REAL *z, int64_t ldz, const REAL *c, int64_t ldc,
                                   REAL *gates, int64_t ldg, REAL *c_new, int64_t ldcn, REAL *h_new, int64_t ldhn) {
    for (int64_t r = 0; r < m; r++) {
        const REAL *zr = z + r * ldz;
        REAL *g = gates + r * ldg, *cn = c_new + r * ldcn, *hn = h_new + r * ldhn;
        const REAL *cr = c + r * ldc;
#pragma omp simd
        for (int64_t j = 0; j < N; j++) {
            REAL ti = LF_TANH(zr[j]), si = LF_SIGMOID(zr[N + j]);
            REAL sf = LF_SIGMOID(zr[2 * N + j] + 1), so = LF_SIGMOID(zr[3 * N + j]);
            REAL cc = cr[j] * sf + ti * si;
            g[j] = ti, g[N + j] = si, g[2 * N + j] = sf, g[3 * N + j] = so;
            cn[j] = cc;
            hn[j] = LF_TANH(cc) * so;
        }
    }
}

/* One whole step: z (m x ldz scratch, 4N used) = pre + h Rt, with Rt (N x ldr) = R^T (Rt[k ldr + j] =
 * R[j, k]), then lstm_gates_fwd. c_new and h_new may not alias c or h. */
static inline void LF_SFX(lstm_step_fwd)(int64_t m, int64_t N, const REAL *pre, int64_t ldp, const REAL *h, int64_t ldh,
                                  const REAL *c, int64_t ldc, const REAL *Rt, int64_t ldr, REAL *z, int64_t ldz,
                                  REAL *gates, int64_t ldg, REAL *c_new, int64_t ldcn, REAL *h_new, int64_t ldhn) {
    int64_t G = 4 * N;
    for (int64_t r = 0; r < m; r++) {
        REAL *zr = z + r * ldz;
        const REAL *hr = h + r * ldh;
        memcpy(zr, pre + r * ldp, (size_t)G * sizeof(REAL));
        for (int64_t k = 0; k < N; k++) {
            REAL a = hr[k];
            const REAL *row = Rt + k * ldr;
#pragma omp simd
            for (int64_t j = 0; j < G; j++) zr[j] += a * row[j];
        }
    }
    LF_SFX(lstm_gates_fwd)(m, N, z, ldz, c, ldc, gates, ldg, c_new, ldcn, h_new, ldhn);
}

/* The adjoint of one step for m rows: from dh_new (gradient at h', m x lddh) and dc_new (at c', m x
 * lddc), with the saved gates, c (the state before) and c_new (c'), writes dz (m x ldz: the gradient at
 * the gates' pre-activations, which is also the gradient at pre) and dc (m x lddco: at c). dc may
 * alias dc_new (each element is read before it is written). */
static inline void LF_SFX(lstm_step_bwd)(int64_t m, int64_t N, const REAL *gates, int64_t ldg, const REAL *c, int64_t ldc,
                                  const REAL *c_new, int64_t ldcn, const REAL *dh_new, int64_t lddh,
                                  const REAL *dc_new, int64_t lddc, REAL *dz, int64_t ldz, REAL *dc, int64_t lddco) {
    for (int64_t r = 0; r < m; r++) {
        const REAL *g = gates + r * ldg, *cr = c + r * ldc, *cn = c_new + r * ldcn;
        const REAL *dhr = dh_new + r * lddh, *dcr = dc_new + r * lddc;
        REAL *dzr = dz + r * ldz, *dco = dc + r * lddco;
#pragma omp simd
        for (int64_t j = 0; j < N; j++) {
            REAL ti = g[j], si = g[N + j], sf = g[2 * N + j], so = g[3 * N + j];
            REAL tc = LF_TANH(cn[j]);
            REAL dcc = dcr[j] + dhr[j] * so * (1 - tc * tc);
            dzr[j] = dcc * si * (1 - ti * ti);
            dzr[N + j] = dcc * ti * si * (1 - si);
            dzr[2 * N + j] = dcc * cr[j] * sf * (1 - sf);
            dzr[3 * N + j] = dhr[j] * tc * so * (1 - so);
            dco[j] = dcc * sf;
        }
    }
}

/* dh (m x lddh) += dz R for m rows, R (4N x N) row-major with row stride ldR (torch's weight) */
static inline void LF_SFX(lstm_dh)(int64_t m, int64_t N, const REAL *dz, int64_t ldz, const REAL *R, int64_t ldR, REAL *dh,
                            int64_t lddh) {
    for (int64_t r = 0; r < m; r++) {
        const REAL *dzr = dz + r * ldz;
        REAL *o = dh + r * lddh;
        for (int64_t j = 0; j < 4 * N; j++) {
            REAL a = dzr[j];
            const REAL *row = R + j * ldR;
#pragma omp simd
            for (int64_t k = 0; k < N; k++) o[k] += a * row[k];
        }
    }
}

/* gRt (N x ldg) += h^T dz over m rows: the gradient of Rt = R^T (h: m x ldh, dz: m x ldz) */
static inline void LF_SFX(lstm_dRt)(int64_t m, int64_t N, const REAL *h, int64_t ldh, const REAL *dz, int64_t ldz, REAL *gRt,
                             int64_t ldg) {
    for (int64_t r = 0; r < m; r++) {
        const REAL *hr = h + r * ldh, *dzr = dz + r * ldz;
        for (int64_t k = 0; k < N; k++) {
            REAL a = hr[k];
            REAL *o = gRt + k * ldg;
#pragma omp simd
            for (int64_t j = 0; j < 4 * N; j++) o[j] += a * dzr[j];
        }
    }
}
