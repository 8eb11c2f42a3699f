/* LTC sequence kernels, written once over REAL and included twice by ltc.c (float, double): the
 * semi-implicit solver and the explicit Runge-Kutta solvers, each with dense synapse tables or an
 * edge list. One step's unfolds are written once (semi_fwd / rk_fwd and their adjoints, over a
 * synapse pass that is dense or an edge list); the four kernels (dense / edge list, forward /
 * backward) differ in how they walk the batch: one row, or a block of LANES rows held transposed.
 * Why one file (~830 lines): it is one template, included per REAL by ltc.c, and its parts only
 * make sense together and in this order (synapse passes -> one step, both solvers -> the four
 * kernels that walk it -> sensory synapses -> the entry points); its own mixed-memory adapters sit
 * at the top, the LSTM step itself is lstm_impl.h.
 *
 * Semi-implicit LTC (docs/math.md, section 2), per batch row b, step t and unfold k:
 *     a_ij = sigmoid(sigma_ij v_i - sm_ij)                      (sm = sigma mu; i pre, j post)
 *     num_j = base0_j + sum_i a_ij we_ij                          (we = w E)
 *     D_j   = base1_j + c_j + sum_i a_ij w_ij                     (c = C_m / (dt / L))
 *     v'_j  = (c_j v_j + num_j) / D_j
 * A masked step (keep == 0) carries the state over unchanged.
 *
 * Layouts (all contiguous, row-major):
 *     base (T, B, 2, N), C (T, B, N), keep (T, B) bytes or NULL, h0 (B, N), S (T, B, N);
 *     dense tables (N, N) [i][j]; sparse tables (E,) with src (pre) / dst (post) int64 indices;
 *     saved for the backward pass (dense: batch-major, so each thread walks its own rows; sparse: see
 *     there): V (B, T, L+1, N): v before each unfold and after the last; Dsv (B, T, L, N): each D_j.
 *
 * Backward (the adjoint of _fused._LTCSemiImplicit / _LTCSparse): with g = dLoss/dv',
 *     q = g / D  (d num),  q1 = -q v'  (d D),  d c += q (v - v'),  d base += [q, q1],
 *     d a_ij = q_j we_ij + q1_j w_ij,  dS_ij = d a_ij a_ij (1 - a_ij)  (at the sigmoid's argument),
 *     d v_i = q_i c_i + sum_j dS_ij sigma_ij,
 *     d we_ij += a q_j, d w_ij += a q1_j, d sigma_ij += dS v_i, d sm_ij -= dS.
 * The activations a are recomputed from V (nothing of size N^2 is saved per step). Each thread
 * accumulates the weight gradients of its rows in its own buffer; they are summed at the end.
 *
 * Return value: 0, or -1 when scratch memory could not be allocated.
 *
 * The entry points at the end take one struct (lf_abi.h: lf_ltc_seq, lf_ltc_sensory) and pass its
 * fields on to the kernels here. LF_KERNEL keeps each kernel a function of its own, so that it
 * compiles as it did when it was the entry point (restrict-qualified parameters, same code).
 */
#ifndef LF_KERNEL
#define LF_KERNEL __attribute__((noinline))
#endif

/* ------------------------------------------------------------------------------- mixed memory
 * With lf_ltc_seq.lstm_pre set, the LSTM step of lstm_impl.h runs before the LTC step of each
 * observed step (row b, step t) and the LTC step starts from its output h_l; a masked step keeps h
 * and c. Backward: the LTC adjoint at h_l and the adjoint at c give, through the LSTM step, the
 * adjoints at the state and at c before the step, the gradient at the gates' input part (lstm_grad_pre)
 * and (per thread, summed at the end) at R^T. mm == NULL: no LSTM. Forward scratch: 9N per thread. */
#define LF_MM_FWD_SCRATCH(N) (9 * (N))

static inline const REAL *LF_SFX(mm_fwd)(const lf_ltc_seq *mm, int64_t B, int64_t N, int64_t t, int64_t b,
                                         const REAL *h, REAL *scr) {
    const int64_t r = t * B + b, G = 4 * N;
    const REAL *c = (const REAL *)mm->lstm_c;
    const REAL *cp = t == 0 ? (const REAL *)mm->lstm_c0 + b * N : c + ((t - 1) * B + b) * N;
    REAL *hl = mm->lstm_hl ? (REAL *)mm->lstm_hl + r * N : scr + G;
    REAL *gt = mm->lstm_gates ? (REAL *)mm->lstm_gates + r * G : scr + G + N;
    LF_SFX(lstm_step_fwd)(1, N, (const REAL *)mm->lstm_pre + r * G, G, h, N, cp, N, (const REAL *)mm->lstm_r_t, G,
                          scr, G, gt, G, (REAL *)mm->lstm_c + r * N, N, hl, N);
    return hl;
}

/* a masked step: c carried over */
static inline void LF_SFX(mm_carry)(const lf_ltc_seq *mm, int64_t B, int64_t N, int64_t t, int64_t b) {
    REAL *c = (REAL *)mm->lstm_c;
    const REAL *cp = t == 0 ? (const REAL *)mm->lstm_c0 + b * N : c + ((t - 1) * B + b) * N;
    memcpy(c + (t * B + b) * N, cp, sizeof(REAL) * N);
}

/* backward of an observed step: g the adjoint at h_l, dc the adjoint at c after the step (replaced by
 * the one before it), dh (out) the adjoint at h before the step; accRt (N, 4N) or NULL */
static inline void LF_SFX(mm_bwd)(const lf_ltc_seq *mm, int64_t B, int64_t N, int64_t t, int64_t b, const REAL *g,
                                  REAL *dc, REAL *dh, REAL *accRt) {
    const int64_t r = t * B + b, G = 4 * N, rp = (t - 1) * B + b;
    const REAL *c = (const REAL *)mm->lstm_c;
    if (mm->lstm_grad_c)
        for (int64_t j = 0; j < N; j++) dc[j] += ((const REAL *)mm->lstm_grad_c)[r * N + j];
    const REAL *cp = t == 0 ? (const REAL *)mm->lstm_c0 + b * N : c + rp * N;
    const REAL *hp = t == 0 ? (const REAL *)mm->h0 + b * N : (const REAL *)mm->states + rp * N;
    REAL *dz = (REAL *)mm->lstm_grad_pre + r * G;
    LF_SFX(lstm_step_bwd)(1, N, (const REAL *)mm->lstm_gates + r * G, G, cp, N, c + r * N, N, g, N, dc, N, dz, G, dc,
                          N);
    memset(dh, 0, sizeof(REAL) * N);
    LF_SFX(lstm_dh)(1, N, dz, G, (const REAL *)mm->lstm_r, N, dh, N);
    if (accRt) LF_SFX(lstm_dRt)(1, N, hp, N, dz, G, accRt, G);
}

/* backward of a masked step: c passed through */
static inline void LF_SFX(mm_skip)(const lf_ltc_seq *mm, int64_t B, int64_t N, int64_t t, int64_t b, REAL *dc) {
    const int64_t r = t * B + b;
    if (mm->lstm_grad_c)
        for (int64_t j = 0; j < N; j++) dc[j] += ((const REAL *)mm->lstm_grad_c)[r * N + j];
    memset((REAL *)mm->lstm_grad_pre + r * 4 * N, 0, sizeof(REAL) * 4 * N);
}

/* sum the per-thread (N, 4N) accumulators of R^T into lstm_grad_r_t */
static void LF_SFX(mm_sum)(const lf_ltc_seq *mm, int64_t N, const REAL *base, int64_t per, int nt) {
    REAL *out = (REAL *)mm->lstm_grad_r_t;
    for (int64_t x = 0; x < 4 * N * N; x++) {
        REAL acc = 0;
        for (int p = 0; p < nt; p++) acc += base[(size_t)p * per + x];
        out[x] = acc;
    }
}

/* The same for a block of LANES rows held transposed ([N][LANES], the edge-list kernels), one row at a
 * time: forward, hlb (out, [N][LANES]) = h_l for observed lanes, h for the others; row: 10N scratch. */
static void LF_SFX(mm_fwd_block)(const lf_ltc_seq *mm, int64_t B, int64_t N, int64_t t, int64_t b0, int64_t nb,
                                 const uint8_t *kp, const REAL *h, REAL *hlb, REAL *row) {
    for (int l = 0; l < LANES; l++) {
        if (l < nb && kp[l]) {
            for (int64_t j = 0; j < N; j++) row[j] = h[j * LANES + l];
            const REAL *hl = LF_SFX(mm_fwd)(mm, B, N, t, b0 + l, row, row + N);
            for (int64_t j = 0; j < N; j++) hlb[j * LANES + l] = hl[j];
        } else {
            if (l < nb) LF_SFX(mm_carry)(mm, B, N, t, b0 + l);
            for (int64_t j = 0; j < N; j++) hlb[j * LANES + l] = h[j * LANES + l];
        }
    }
}

/* backward: g ([N][LANES]) the adjoint at the step's start; dh ([N][LANES]) += the adjoint at h for
 * observed lanes (masked lanes carry theirs already); dcb (LANES, N) the adjoints at c; row: 2N */
static void LF_SFX(mm_bwd_block)(const lf_ltc_seq *mm, int64_t B, int64_t N, int64_t t, int64_t b0, int64_t nb,
                                 const uint8_t *kp, const REAL *g, REAL *dh, REAL *dcb, REAL *row, REAL *acc) {
    for (int l = 0; l < nb; l++) {
        if (kp[l]) {
            for (int64_t j = 0; j < N; j++) row[j] = g[j * LANES + l];
            LF_SFX(mm_bwd)(mm, B, N, t, b0 + l, row, dcb + l * N, row + N, acc);
            for (int64_t j = 0; j < N; j++) dh[j * LANES + l] += row[N + j];
        } else {
            LF_SFX(mm_skip)(mm, B, N, t, b0 + l, dcb + l * N);
        }
    }
}

/* ------------------------------------------------------------------------------ synapse passes
 * The recurrent synapses of one layer: dense (N, N) tables [i][j] when src == NULL, else an edge list
 * of E synapses (src pre, dst post). The dense kernels walk one batch row (n = N values), the
 * edge-list kernels a block of LANES rows held [neuron][lane] (n = N * LANES values). */
typedef struct {
    int64_t N, E;
    const REAL *w, *we, *sigma, *sm;
    const int64_t *src, *dst;
} LF_SFX(ltc_syn);

/* num_j += sum_i a_ij we_ij, D_j += sum_i a_ij w_ij with a_ij = sigmoid(sigma_ij u_i - sm_ij), for
 * dense tables (n_in, N) and one row u: the recurrent and the sensory synapses */
LF_HOT void LF_SFX(rows_fwd)(int64_t n_in, int64_t N, const REAL *restrict u, const REAL *restrict sigma,
                             const REAL *restrict sm, const REAL *restrict w, const REAL *restrict we,
                             REAL *restrict num, REAL *restrict D) {
    for (int64_t i = 0; i < n_in; i++) {
        const REAL ui = u[i];
        const REAL *sg = sigma + i * N, *sr = sm + i * N, *wr = w + i * N, *er = we + i * N;
#pragma omp simd
        for (int64_t j = 0; j < N; j++) {
            const REAL a = LF_SIG(sg[j] * ui - sr[j]);
            num[j] += a * er[j];
            D[j] += a * wr[j];
        }
    }
}

/* the same over the synapses of sy: dense over one row, or one edge at a time over all lanes */
LF_HOT void LF_SFX(syn_fwd)(const LF_SFX(ltc_syn) *sy, const REAL *restrict v, REAL *restrict num,
                            REAL *restrict D) {
    if (!sy->src) {
        LF_SFX(rows_fwd)(sy->N, sy->N, v, sy->sigma, sy->sm, sy->w, sy->we, num, D);
        return;
    }
    const REAL *restrict sigma = sy->sigma, *restrict sm = sy->sm, *restrict w = sy->w, *restrict we = sy->we;
    for (int64_t e = 0; e < sy->E; e++) {
        const REAL sg = sigma[e], sr = sm[e], ww = w[e], wwe = we[e];
        const REAL *vi = v + sy->src[e] * LANES;
        REAL *nj = num + sy->dst[e] * LANES, *dj = D + sy->dst[e] * LANES;
#pragma omp simd
        for (int l = 0; l < LANES; l++) {
            const REAL a = LF_SIG(sg * vi[l] - sr);
            nj[l] += a * wwe;
            dj[l] += a * ww;
        }
    }
}

/* Adjoint of one row i of a dense table: for presynaptic value u and the postsynaptic adjoints q
 * (d num) and q1 (d D): d a_ij = q_j we_ij + q1_j w_ij, dS_ij = d a_ij a_ij (1 - a_ij); accumulates
 * the weight gradients into acc (when not NULL: the row of the w, we, sigma and sm tables, stride
 * apart) and returns sum_j dS_ij sigma_ij (the adjoint of u). Recurrent and sensory synapses. */
LF_HOT REAL LF_SFX(row_bwd)(int64_t N, REAL u, const REAL *restrict sg, const REAL *restrict sr,
                            const REAL *restrict wr, const REAL *restrict er, const REAL *restrict q,
                            const REAL *restrict q1, REAL *acc, int64_t stride) {
    REAL red = 0;
    if (acc) {
        REAL *restrict aw_ = acc, *restrict awe_ = acc + stride, *restrict asig_ = acc + 2 * stride;
        REAL *restrict asm1_ = acc + 3 * stride;
#pragma omp simd reduction(+ : red)
        for (int64_t j = 0; j < N; j++) {
            const REAL a = LF_SIG(sg[j] * u - sr[j]);
            const REAL dS = (q[j] * er[j] + q1[j] * wr[j]) * a * (1 - a);
            awe_[j] += a * q[j];
            aw_[j] += a * q1[j];
            asm1_[j] += dS;
            asig_[j] += dS * u;
            red += dS * sg[j];
        }
    } else {
#pragma omp simd reduction(+ : red)
        for (int64_t j = 0; j < N; j++) {
            const REAL a = LF_SIG(sg[j] * u - sr[j]);
            red += (q[j] * er[j] + q1[j] * wr[j]) * a * (1 - a) * sg[j];
        }
    }
    return red;
}

/* The same over an edge list for a block ([neuron][lane]): gu[src] += dS sigma per edge and lane;
 * acc (or NULL) the [edge][lane] accumulators of w, we, sigma and sm, E * LANES apart. */
LF_HOT void LF_SFX(edges_bwd)(const LF_SFX(ltc_syn) *sy, const REAL *restrict u, const REAL *restrict q,
                              const REAL *restrict q1, REAL *restrict gu, REAL *acc) {
    const REAL *restrict sigma = sy->sigma, *restrict sm = sy->sm, *restrict w = sy->w, *restrict we = sy->we;
    const int64_t EW = sy->E * LANES;
    for (int64_t e = 0; e < sy->E; e++) {
        const REAL sg = sigma[e], sr = sm[e], ww = w[e], wwe = we[e];
        const int64_t s = sy->src[e] * LANES, d = sy->dst[e] * LANES;
        const REAL *vi = u + s, *qa = q + d, *qb = q1 + d;
        REAL *gi = gu + s;
        if (acc) {
            REAL *restrict aw_ = acc + e * LANES, *restrict awe_ = aw_ + EW, *restrict asig_ = aw_ + 2 * EW;
            REAL *restrict asm1_ = aw_ + 3 * EW;
#pragma omp simd
            for (int l = 0; l < LANES; l++) {
                const REAL a = LF_SIG(sg * vi[l] - sr);
                const REAL dS = (qa[l] * wwe + qb[l] * ww) * a * (1 - a);
                awe_[l] += a * qa[l];
                aw_[l] += a * qb[l];
                asm1_[l] += dS;
                asig_[l] += dS * vi[l];
                gi[l] += dS * sg;
            }
        } else {
#pragma omp simd
            for (int l = 0; l < LANES; l++) {
                const REAL a = LF_SIG(sg * vi[l] - sr);
                gi[l] += (qa[l] * wwe + qb[l] * ww) * a * (1 - a) * sg;
            }
        }
    }
}

/* Sum four per-thread accumulator tables (thread p's at base + p * per; n entries of `lanes` values
 * each, the tables n * lanes apart) over the threads and the lanes into the gradients of w, we,
 * sigma and (negated: sm enters as -sm) sm. Dense tables: lanes = 1; edge lists: [edge][lane]. */
static void LF_SFX(sum_four)(const REAL *base, int64_t per, int nt, int64_t n, int lanes, REAL *restrict gw,
                             REAL *restrict gwe, REAL *restrict gsig, REAL *restrict gsm) {
    const int64_t nl = n * lanes;
    for (int64_t x = 0; x < n; x++) {
        REAL s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (int p = 0; p < nt; p++) {
            const REAL *acc = base + (size_t)p * per + x * lanes;
            for (int l = 0; l < lanes; l++) {
                s0 += acc[l];
                s1 += acc[nl + l];
                s2 += acc[2 * nl + l];
                s3 += acc[3 * nl + l];
            }
        }
        gw[x] = s0;
        gwe[x] = s1;
        gsig[x] = s2;
        gsm[x] = -s3;
    }
}

/* ------------------------------------------------------------------- explicit Runge-Kutta (RK)
 * The explicit solvers (euler, midpoint, heun, rk4, any tableau) on C_m dv/dt = num(v) - den(v) v,
 * with num and den as above but without epsilon in base1 and without c in den. One interval
 * h = dt / L is split in S stages; with c = C_m / h and K_s = h k_s:
 *     u_s = v + sum_{i<s} a_si K_i,   K_s = (num(u_s) - den(u_s) u_s) / c,   v' = v + sum_s b_s K_s.
 * Saved per unfold and stage (dense: batch-major (B, T, L, S, ...); sparse: (nblk, T, L, S, ..., LANES)):
 *     V [u_s, K_s] and Dsv den(u_s).
 * Backward, with g = dLoss/dv': gv = g, gK_s = b_s g; for s = S-1 .. 0, from gK_s:
 *     q = gK_s / c (d num), q1 = -q u_s (d den), d c -= q K_s, d base += [q, q1],
 *     gu_j = -q_j den_j + sum_k dS_jk sigma_jk  (the synapse adjoint, as the semi-implicit step),
 *     gv += gu, gK_i += a_si gu (i < s).
 * Masked steps carry the state over. */

/* ------------------------------------------------------------------------------ one LTC step
 * The L unfolds of one step over n values (a row, or a block [N][LANES]), forward and adjoint, for
 * the semi-implicit solver and for the explicit RK solvers. bn, bd: the step's base (num and D
 * before the synapses; D without c); c = C_m / (dt / L). Forward, Vt == NULL: nothing is saved and
 * the scratch rows hold the unfolds. Adjoint: g (in) the adjoint at the step's end, (out) at its
 * start; adds to gb0, gb1 (d bn, d bd), gc (d c) and the weight accumulators acc (or NULL), stride
 * apart (see row_bwd / edges_bwd). */

/* semi-implicit: saves v before each unfold and after the last (Vt: (L+1) n) and each D (Dt: L n);
 * returns the new state (in Vt, pa or pb) */
LF_HOT const REAL *LF_SFX(semi_fwd)(const LF_SFX(ltc_syn) *sy, int64_t n, int64_t L, const REAL *bn,
                                    const REAL *bd, const REAL *c, const REAL *v, REAL *num, REAL *den, REAL *pa,
                                    REAL *pb, REAL *Vt, REAL *Dt) {
    if (Vt) memcpy(Vt, v, sizeof(REAL) * n);
    for (int64_t k = 0; k < L; k++) {
        REAL *vn = Vt ? Vt + (k + 1) * n : (k & 1 ? pb : pa);
        REAL *D = Vt ? Dt + k * n : den;
        for (int64_t x = 0; x < n; x++) {
            num[x] = bn[x];
            D[x] = bd[x] + c[x];
        }
        LF_SFX(syn_fwd)(sy, v, num, D);
        for (int64_t x = 0; x < n; x++) vn[x] = (c[x] * v[x] + num[x]) / D[x];
        v = vn;
    }
    return v;
}

/* q, q1, gn: scratch of n each */
LF_HOT void LF_SFX(semi_bwd)(const LF_SFX(ltc_syn) *sy, int64_t n, int64_t L, const REAL *c, const REAL *Vt,
                             const REAL *Dt, REAL *g, REAL *gn, REAL *q, REAL *q1, REAL *gb0, REAL *gb1, REAL *gc,
                             REAL *acc, int64_t stride) {
    const int64_t N = sy->N;
    for (int64_t k = L - 1; k >= 0; k--) {
        const REAL *vk = Vt + k * n, *vn = Vt + (k + 1) * n, *D = Dt + k * n;
        for (int64_t x = 0; x < n; x++) {
            q[x] = g[x] / D[x];
            q1[x] = -q[x] * vn[x];
            gb0[x] += q[x];
            gb1[x] += q1[x];
            gc[x] += q[x] * (vk[x] - vn[x]);
        }
        if (sy->src) {
            for (int64_t x = 0; x < n; x++) gn[x] = q[x] * c[x];
            LF_SFX(edges_bwd)(sy, vk, q, q1, gn, acc);
        } else {
            for (int64_t i = 0; i < N; i++) {
                const int64_t o = i * N;
                const REAL red = LF_SFX(row_bwd)(N, vk[i], sy->sigma + o, sy->sm + o, sy->w + o, sy->we + o, q, q1,
                                                 acc ? acc + o : NULL, stride);
                gn[i] = q[i] * c[i] + red;
            }
        }
        memcpy(g, gn, sizeof(REAL) * n);
    }
}

/* explicit RK with tableau A (S, S), bw (S): saves [u_s, K_s] per unfold and stage (Vt: L S 2n) and
 * den(u_s) (Dt: L S n); Vs (2 S n) and Ds (S n) hold one unfold's when Vt == NULL. Returns the new
 * state, in vv. */
LF_HOT const REAL *LF_SFX(rk_fwd)(const LF_SFX(ltc_syn) *sy, int64_t n, int64_t L, int64_t S, const REAL *A,
                                  const REAL *bw, const REAL *bn, const REAL *bd, const REAL *c, const REAL *v,
                                  REAL *vv, REAL *num, REAL *Vs, REAL *Ds, REAL *Vt, REAL *Dt) {
    memcpy(vv, v, sizeof(REAL) * n);
    for (int64_t k = 0; k < L; k++) {
        REAL *Vk = Vt ? Vt + k * S * 2 * n : Vs, *Dk = Vt ? Dt + k * S * n : Ds; /* stage s: u, K at Vk + 2 s n */
        for (int64_t s = 0; s < S; s++) {
            REAL *u = Vk + 2 * s * n, *K = u + n, *D = Dk + s * n;
            for (int64_t x = 0; x < n; x++) u[x] = vv[x];
            for (int64_t i = 0; i < s; i++) {
                const REAL ai = A[s * S + i];
                if (ai == 0) continue;
                const REAL *Ki = Vk + (2 * i + 1) * n;
                for (int64_t x = 0; x < n; x++) u[x] += ai * Ki[x];
            }
            for (int64_t x = 0; x < n; x++) {
                num[x] = bn[x];
                D[x] = bd[x];
            }
            LF_SFX(syn_fwd)(sy, u, num, D);
            for (int64_t x = 0; x < n; x++) K[x] = (num[x] - D[x] * u[x]) / c[x];
        }
        for (int64_t s = 0; s < S; s++) {
            const REAL *K = Vk + (2 * s + 1) * n;
            for (int64_t x = 0; x < n; x++) vv[x] += bw[s] * K[x];
        }
    }
    return vv;
}

/* q, q1, gu, gv: scratch of n each, gK of S n */
LF_HOT void LF_SFX(rk_bwd)(const LF_SFX(ltc_syn) *sy, int64_t n, int64_t L, int64_t S, const REAL *A,
                           const REAL *bw, const REAL *c, const REAL *Vt, const REAL *Dt, REAL *g, REAL *gv, REAL *gu,
                           REAL *gK, REAL *q, REAL *q1, REAL *gb0, REAL *gb1, REAL *gc, REAL *acc, int64_t stride) {
    const int64_t N = sy->N;
    for (int64_t k = L - 1; k >= 0; k--) {
        memcpy(gv, g, sizeof(REAL) * n);
        for (int64_t s = 0; s < S; s++)
            for (int64_t x = 0; x < n; x++) gK[s * n + x] = bw[s] * g[x];
        for (int64_t s = S - 1; s >= 0; s--) {
            const REAL *u = Vt + ((k * S + s) * 2) * n, *K = u + n, *D = Dt + (k * S + s) * n;
            const REAL *gk = gK + s * n;
            for (int64_t x = 0; x < n; x++) {
                q[x] = gk[x] / c[x];
                q1[x] = -q[x] * u[x];
                gb0[x] += q[x];
                gb1[x] += q1[x];
                gc[x] -= q[x] * K[x];
            }
            if (sy->src) {
                for (int64_t x = 0; x < n; x++) gu[x] = -q[x] * D[x];
                LF_SFX(edges_bwd)(sy, u, q, q1, gu, acc);
            } else {
                for (int64_t i = 0; i < N; i++) {
                    const int64_t o = i * N;
                    const REAL red = LF_SFX(row_bwd)(N, u[i], sy->sigma + o, sy->sm + o, sy->w + o, sy->we + o, q,
                                                     q1, acc ? acc + o : NULL, stride);
                    gu[i] = red - q[i] * D[i];
                }
            }
            for (int64_t x = 0; x < n; x++) gv[x] += gu[x];
            for (int64_t i = 0; i < s; i++) {
                const REAL ai = A[s * S + i];
                if (ai == 0) continue;
                REAL *gki = gK + i * n;
                for (int64_t x = 0; x < n; x++) gki[x] += ai * gu[x];
            }
        }
        memcpy(g, gv, sizeof(REAL) * n);
    }
}

/* Per-thread scratch of per values (zeroed when zero), and the tableau in REAL when S > 0 (*tab, else
 * NULL): A (S, S) then b (S). NULL when either cannot be allocated. nt < 1 counts as 1. */
static REAL *LF_SFX(kernel_alloc)(int64_t per, int *nt, int zero, int64_t S, const double *rka, const double *rkb,
                                  REAL **tab) {
    if (*nt < 1) *nt = 1;
    const size_t count = (size_t)per * (size_t)*nt;
    REAL *scratch = zero ? calloc(count, sizeof(REAL)) : malloc(sizeof(REAL) * count);
    *tab = S > 0 ? malloc(sizeof(REAL) * (size_t)(S * S + S)) : NULL;
    if (!scratch || (S > 0 && !*tab)) {
        free(scratch);
        free(*tab);
        return NULL;
    }
    for (int64_t x = 0; x < S * S; x++) (*tab)[x] = (REAL)rka[x];
    for (int64_t x = 0; x < S; x++) (*tab)[S * S + x] = (REAL)rkb[x];
    return scratch;
}

/* ------------------------------------------------------------------------------ dense kernels
 * One batch row at a time per thread. S = 0: the semi-implicit solver; S > 0: the RK tableau. */

/* forward, start of step t of row b: 0 when the step is masked (the state, and c, carried over into
 * st; *h = st), else 1 with *h where the LTC step starts (h_l with mixed memory) */
LF_HOT int LF_SFX(row_fwd_in)(const lf_ltc_seq *mm, const uint8_t *keep, int64_t B, int64_t N, int64_t t,
                              int64_t b, const REAL **h, REAL *st, REAL *mms) {
    if (keep && !keep[t * B + b]) {
        memcpy(st, *h, sizeof(REAL) * N);
        *h = st;
        if (mm) LF_SFX(mm_carry)(mm, B, N, t, b);
        return 0;
    }
    if (mm) *h = LF_SFX(mm_fwd)(mm, B, N, t, b, *h, mms);
    return 1;
}

static LF_KERNEL int LF_SFX(ltc_dense_fwd)(int64_t T, int64_t B, int64_t N, int64_t L, int64_t S,
                                           const double *rka, const double *rkb, const REAL *restrict base,
                                           const REAL *restrict C, const uint8_t *restrict keep,
                                           const REAL *restrict h0, const REAL *restrict w, const REAL *restrict we,
                                           const REAL *restrict sigma, const REAL *restrict sm, REAL *restrict St,
                                           REAL *restrict V, REAL *restrict Dsv, const lf_ltc_seq *mm, int nt) {
    const LF_SFX(ltc_syn) sy = {N, 0, w, we, sigma, sm, NULL, NULL};
    const int64_t per = (4 + 3 * S) * N + (mm ? LF_MM_FWD_SCRATCH(N) : 0);
    REAL *tab, *scratch = LF_SFX(kernel_alloc)(per, &nt, 0, S, rka, rkb, &tab);
    if (!scratch) return -1;
    const REAL *A = tab, *bw = S > 0 ? tab + S * S : NULL;
    const int save = V != NULL && Dsv != NULL;
    const int64_t vstep = S ? L * S * 2 * N : (L + 1) * N, dstep = S ? L * S * N : L * N; /* saved per step */
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        REAL *my = scratch + (size_t)omp_get_thread_num() * per;
        REAL *num = my, *den = my + N, *pa = my + 2 * N, *pb = my + 3 * N;
        REAL *Vs = my + 4 * N, *Ds = Vs + 2 * S * N, *mms = Ds + S * N;
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < B; b++) {
            const REAL *h = h0 + b * N; /* the state before step t */
            for (int64_t t = 0; t < T; t++) {
                const int64_t r = t * B + b;
                REAL *st = St + r * N;
                if (!LF_SFX(row_fwd_in)(mm, keep, B, N, t, b, &h, st, mms)) continue;
                const REAL *bs = base + r * 2 * N, *c = C + r * N;
                REAL *Vt = save ? V + (b * T + t) * vstep : NULL, *Dt = save ? Dsv + (b * T + t) * dstep : NULL;
                const REAL *v = S ? LF_SFX(rk_fwd)(&sy, N, L, S, A, bw, bs, bs + N, c, h, pa, num, Vs, Ds, Vt, Dt)
                                  : LF_SFX(semi_fwd)(&sy, N, L, bs, bs + N, c, h, num, den, pa, pb, Vt, Dt);
                memcpy(st, v, sizeof(REAL) * N);
                h = st;
            }
        }
    }
    free(scratch);
    free(tab);
    return 0;
}

/* backward, start of step t of row b: zeroes the step's gb, gc; 0 when the step is masked (its
 * adjoint gs passes to the state before it, in dh), else 1 with g = the adjoint at the step's end */
LF_HOT int LF_SFX(row_bwd_in)(const lf_ltc_seq *mm, const uint8_t *keep, int64_t B, int64_t N, int64_t t,
                              int64_t b, const REAL *gs, REAL *gb, REAL *gc, REAL *dh, REAL *g, REAL *mdc) {
    memset(gb, 0, sizeof(REAL) * 2 * N);
    memset(gc, 0, sizeof(REAL) * N);
    if (keep && !keep[t * B + b]) {
        for (int64_t j = 0; j < N; j++) dh[j] += gs[j];
        if (mm) LF_SFX(mm_skip)(mm, B, N, t, b, mdc);
        return 0;
    }
    for (int64_t j = 0; j < N; j++) g[j] = gs[j] + dh[j];
    return 1;
}

static LF_KERNEL int LF_SFX(ltc_dense_bwd)(int64_t T, int64_t B, int64_t N, int64_t L, int64_t S,
                                           const double *rka, const double *rkb, const REAL *restrict C,
                                           const uint8_t *restrict keep, const REAL *restrict w,
                                           const REAL *restrict we, const REAL *restrict sigma, const REAL *restrict sm,
                                           const REAL *restrict V, const REAL *restrict Dsv, const REAL *restrict gS,
                                           REAL *restrict gbase, REAL *restrict gC, REAL *restrict gh0,
                                           REAL *restrict gw, REAL *restrict gwe, REAL *restrict gsig,
                                           REAL *restrict gsm, int need_w, const lf_ltc_seq *mm, int nt) {
    const LF_SFX(ltc_syn) sy = {N, 0, w, we, sigma, sm, NULL, NULL};
    const int64_t NN = N * N;
    const int64_t mmr = mm && mm->lstm_grad_r_t ? 4 * NN : 0; /* the R^T accumulator */
    const int64_t head = (5 + S) * N, wend = head + (need_w ? 4 * NN : 0);
    const int64_t per = wend + (mm ? N + mmr : 0);
    REAL *tab, *scratch = LF_SFX(kernel_alloc)(per, &nt, 1, S, rka, rkb, &tab);
    if (!scratch) return -1;
    const REAL *A = tab, *bw = S > 0 ? tab + S * S : NULL;
    const int64_t vstep = S ? L * S * 2 * N : (L + 1) * N, dstep = S ? L * S * N : L * N;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        REAL *my = scratch + (size_t)omp_get_thread_num() * per;
        REAL *g = my, *gn = my + N, *q = my + 2 * N, *q1 = my + 3 * N, *gv = my + 4 * N, *gK = my + 5 * N;
        REAL *acc = need_w ? my + head : NULL;                            /* the weights' accumulators */
        REAL *mdc = my + wend, *macc = mmr ? my + wend + N : NULL; /* used if mm */
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < B; b++) {
            REAL *dh = gh0 + b * N; /* the gradient at the state carried into step t+1 */
            memset(dh, 0, sizeof(REAL) * N);
            if (mm) memset(mdc, 0, sizeof(REAL) * N);
            for (int64_t t = T - 1; t >= 0; t--) {
                const int64_t r = t * B + b;
                REAL *gb = gbase + r * 2 * N, *gc = gC + r * N;
                if (!LF_SFX(row_bwd_in)(mm, keep, B, N, t, b, gS + r * N, gb, gc, dh, g, mdc)) continue;
                const REAL *c = C + r * N, *Vt = V + (b * T + t) * vstep, *Dt = Dsv + (b * T + t) * dstep;
                if (S)
                    LF_SFX(rk_bwd)(&sy, N, L, S, A, bw, c, Vt, Dt, g, gv, gn, gK, q, q1, gb, gb + N, gc, acc, NN);
                else
                    LF_SFX(semi_bwd)(&sy, N, L, c, Vt, Dt, g, gn, q, q1, gb, gb + N, gc, acc, NN);
                if (mm)
                    LF_SFX(mm_bwd)(mm, B, N, t, b, g, mdc, dh, macc);
                else
                    memcpy(dh, g, sizeof(REAL) * N);
            }
            if (mm) memcpy((REAL *)mm->lstm_grad_c0 + b * N, mdc, sizeof(REAL) * N);
        }
    }
    if (need_w) LF_SFX(sum_four)(scratch + head, per, nt, NN, 1, gw, gwe, gsig, gsm); /* over the threads */
    if (mmr) LF_SFX(mm_sum)(mm, N, scratch + wend + N, per, nt);
    free(scratch);
    free(tab);
    return 0;
}

/* ---------------------------------------------------------------------------- sparse (edge list)
 * With few synapses per neuron (AutoNCP(32, 10): 102 edges) a vector over the edges needs gathers
 * and conflicting scatters; here the vector runs over LANES batch rows instead. A block of LANES
 * rows is held transposed, [neuron][lane], so every edge is one contiguous vector operation:
 * read lanes of v_src, one sigmoid per lane, add lanes into num_dst / D_dst. Rows past the batch
 * repeat the block's first row and get a zero gradient.
 * Masked lanes (keep == 0) are computed with base = [0, 1] and c = cmask, and their results are
 * discarded (backward gives them g = 0): semi-implicit, c = 1 (finite even where the padding holds
 * dt = 0); RK, c = +inf, so K = 0 and u_s = v stay finite, and q = 0 in the backward pass.
 * Saved layout (private to these two functions): per block and step, as the dense kernels' per row
 * and step with each value a vector of LANES. */
int LF_SFX(lf_ltc_lanes)(void) { return LANES; }

/* load step t of a block transposed: cc, b0, b1 [N][LANES] and the lanes' keep flags; masked lanes
 * get c = cmask, base = [0, 1] */
static void LF_SFX(sparse_load)(int64_t t, int64_t B, int64_t N, int64_t b0, int64_t nb, REAL cmask,
                                const REAL *restrict base,
                                const REAL *restrict C, const uint8_t *restrict keep, REAL *restrict cc,
                                REAL *restrict bn, REAL *restrict bd, uint8_t *restrict kp) {
    for (int l = 0; l < LANES; l++) {
        const int64_t r = t * B + b0 + (l < nb ? l : 0);
        kp[l] = keep ? keep[r] != 0 : 1;
        const REAL *c = C + r * N;
        for (int64_t j = 0; j < N; j++) cc[j * LANES + l] = kp[l] ? c[j] : cmask;
        if (!base) continue; /* (the backward pass needs c only) */
        const REAL *bs = base + r * 2 * N;
        for (int64_t j = 0; j < N; j++) {
            bn[j * LANES + l] = kp[l] ? bs[j] : 0;
            bd[j * LANES + l] = kp[l] ? bs[N + j] : 1;
        }
    }
}

static LF_KERNEL int LF_SFX(ltc_sparse_fwd)(int64_t T, int64_t B, int64_t N, int64_t L, int64_t S,
                                            const double *rka, const double *rkb, int64_t E,
                                            const REAL *restrict base, const REAL *restrict C,
                                            const uint8_t *restrict keep, const REAL *restrict h0,
                                            const REAL *restrict w, const REAL *restrict we, const REAL *restrict sigma,
                                            const REAL *restrict sm, const int64_t *restrict src,
                                            const int64_t *restrict dst, REAL *restrict St, REAL *restrict V,
                                            REAL *restrict Dsv, const lf_ltc_seq *mm, int nt) {
    const LF_SFX(ltc_syn) sy = {N, E, w, we, sigma, sm, src, dst};
    const int64_t NW = N * LANES, nblk = (B + LANES - 1) / LANES;
    const int64_t per = (8 + 3 * S) * NW + LANES + (mm ? NW + 10 * N : 0);
    REAL *tab, *scratch = LF_SFX(kernel_alloc)(per, &nt, 0, S, rka, rkb, &tab);
    if (!scratch) return -1;
    const REAL *A = tab, *bw = S > 0 ? tab + S * S : NULL;
    const REAL cmask = S ? (REAL)INFINITY : (REAL)1;
    const int save = V != NULL && Dsv != NULL;
    const int64_t vstep = S ? L * S * 2 * NW : (L + 1) * NW, dstep = S ? L * S * NW : L * NW;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        REAL *my = scratch + (size_t)omp_get_thread_num() * per;
        REAL *h = my, *pa = my + NW, *pb = my + 2 * NW, *num = my + 3 * NW, *den = my + 4 * NW;
        REAL *cc = my + 5 * NW, *bn = my + 6 * NW, *bd = my + 7 * NW, *Vs = my + 8 * NW, *Ds = Vs + 2 * S * NW;
        uint8_t *kp = (uint8_t *)(Ds + S * NW);
        REAL *hlb = Ds + S * NW + LANES, *mrow = hlb + NW; /* used if mm */
#pragma omp for schedule(dynamic, 1)
        for (int64_t blk = 0; blk < nblk; blk++) {
            const int64_t b0 = blk * LANES, nb = B - b0 < LANES ? B - b0 : LANES;
            for (int l = 0; l < LANES; l++)
                for (int64_t j = 0; j < N; j++) h[j * LANES + l] = h0[(b0 + (l < nb ? l : 0)) * N + j];
            for (int64_t t = 0; t < T; t++) {
                LF_SFX(sparse_load)(t, B, N, b0, nb, cmask, base, C, keep, cc, bn, bd, kp);
                REAL *Vt = save ? V + (blk * T + t) * vstep : NULL, *Dt = save ? Dsv + (blk * T + t) * dstep : NULL;
                const REAL *hin = h; /* the LTC step's start: h_l with mixed memory */
                if (mm) {
                    LF_SFX(mm_fwd_block)(mm, B, N, t, b0, nb, kp, h, hlb, mrow);
                    hin = hlb;
                }
                const REAL *v = S ? LF_SFX(rk_fwd)(&sy, NW, L, S, A, bw, bn, bd, cc, hin, pa, num, Vs, Ds, Vt, Dt)
                                  : LF_SFX(semi_fwd)(&sy, NW, L, bn, bd, cc, hin, num, den, pa, pb, Vt, Dt);
                for (int64_t j = 0; j < N; j++)
                    for (int l = 0; l < LANES; l++)
                        if (kp[l]) h[j * LANES + l] = v[j * LANES + l];
                for (int l = 0; l < nb; l++) {
                    REAL *st = St + (t * B + b0 + l) * N;
                    for (int64_t j = 0; j < N; j++) st[j] = h[j * LANES + l];
                }
            }
        }
    }
    free(scratch);
    free(tab);
    return 0;
}

static LF_KERNEL int LF_SFX(ltc_sparse_bwd)(int64_t T, int64_t B, int64_t N, int64_t L, int64_t S,
                                            const double *rka, const double *rkb, int64_t E,
                                            const REAL *restrict C, const uint8_t *restrict keep,
                                            const REAL *restrict w, const REAL *restrict we, const REAL *restrict sigma,
                                            const REAL *restrict sm, const int64_t *restrict src,
                                            const int64_t *restrict dst, const REAL *restrict V,
                                            const REAL *restrict Dsv, const REAL *restrict gS, REAL *restrict gbase,
                                            REAL *restrict gC, REAL *restrict gh0, REAL *restrict gw,
                                            REAL *restrict gwe, REAL *restrict gsig, REAL *restrict gsm, int need_w,
                                            const lf_ltc_seq *mm, int nt) {
    const LF_SFX(ltc_syn) sy = {N, E, w, we, sigma, sm, src, dst};
    const int64_t NW = N * LANES, EW = E * LANES, nblk = (B + LANES - 1) / LANES;
    const int64_t head = (10 + S) * NW + LANES, wend = head + (need_w ? 4 * EW : 0);
    const int64_t mmr = mm && mm->lstm_grad_r_t ? 4 * N * N : 0;
    const int64_t per = wend + (mm ? NW + 2 * N + mmr : 0);
    REAL *tab, *scratch = LF_SFX(kernel_alloc)(per, &nt, 1, S, rka, rkb, &tab);
    if (!scratch) return -1;
    const REAL *A = tab, *bw = S > 0 ? tab + S * S : NULL;
    const REAL cmask = S ? (REAL)INFINITY : (REAL)1;
    const int64_t vstep = S ? L * S * 2 * NW : (L + 1) * NW, dstep = S ? L * S * NW : L * NW;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        REAL *my = scratch + (size_t)omp_get_thread_num() * per;
        REAL *dh = my, *g = my + NW, *gn = my + 2 * NW, *q = my + 3 * NW, *q1 = my + 4 * NW, *cc = my + 5 * NW;
        REAL *gb0 = my + 6 * NW, *gb1 = my + 7 * NW, *gc = my + 8 * NW, *gv = my + 9 * NW, *gK = my + 10 * NW;
        uint8_t *kp = (uint8_t *)(gK + S * NW);
        REAL *acc = need_w ? my + head : NULL;                                       /* [edge][lane] */
        REAL *mdc = my + wend, *mrow = mdc + NW, *macc = mmr ? mrow + 2 * N : NULL; /* used if mm */
#pragma omp for schedule(dynamic, 1)
        for (int64_t blk = 0; blk < nblk; blk++) {
            const int64_t b0 = blk * LANES, nb = B - b0 < LANES ? B - b0 : LANES;
            memset(dh, 0, sizeof(REAL) * NW);
            if (mm) memset(mdc, 0, sizeof(REAL) * NW);
            for (int64_t t = T - 1; t >= 0; t--) {
                LF_SFX(sparse_load)(t, B, N, b0, nb, cmask, NULL, C, keep, cc, NULL, NULL, kp);
                for (int l = 0; l < LANES; l++) {
                    const REAL *gs = gS + (t * B + b0 + (l < nb ? l : 0)) * N;
                    for (int64_t j = 0; j < N; j++) {
                        const REAL x = (l < nb ? gs[j] : 0) + dh[j * LANES + l];
                        /* masked lanes: the gradient passes to the previous state (kept in dh) */
                        g[j * LANES + l] = kp[l] ? x : 0;
                        dh[j * LANES + l] = kp[l] ? 0 : x;
                    }
                }
                memset(gb0, 0, sizeof(REAL) * NW);
                memset(gb1, 0, sizeof(REAL) * NW);
                memset(gc, 0, sizeof(REAL) * NW);
                const REAL *Vt = V + (blk * T + t) * vstep, *Dt = Dsv + (blk * T + t) * dstep;
                if (S)
                    LF_SFX(rk_bwd)(&sy, NW, L, S, A, bw, cc, Vt, Dt, g, gv, gn, gK, q, q1, gb0, gb1, gc, acc, EW);
                else
                    LF_SFX(semi_bwd)(&sy, NW, L, cc, Vt, Dt, g, gn, q, q1, gb0, gb1, gc, acc, EW);
                if (mm)
                    LF_SFX(mm_bwd_block)(mm, B, N, t, b0, nb, kp, g, dh, mdc, mrow, macc);
                else
                    for (int64_t x = 0; x < NW; x++) dh[x] += g[x];
                for (int l = 0; l < nb; l++) {
                    const int64_t r = t * B + b0 + l;
                    REAL *gb = gbase + r * 2 * N, *gcr = gC + r * N;
                    for (int64_t j = 0; j < N; j++) {
                        gb[j] = gb0[j * LANES + l];
                        gb[N + j] = gb1[j * LANES + l];
                        gcr[j] = gc[j * LANES + l];
                    }
                }
            }
            for (int l = 0; l < nb; l++)
                for (int64_t j = 0; j < N; j++) gh0[(b0 + l) * N + j] = dh[j * LANES + l];
            if (mm) memcpy((REAL *)mm->lstm_grad_c0 + b0 * N, mdc, sizeof(REAL) * (size_t)(nb * N));
        }
    }
    if (need_w) LF_SFX(sum_four)(scratch + head, per, nt, E, LANES, gw, gwe, gsig, gsm);
    if (mmr) LF_SFX(mm_sum)(mm, N, scratch + wend + NW + 2 * N, per, nt);
    free(scratch);
    free(tab);
    return 0;
}

/* ---------------------------------------------------------------------- sensory synapses (dense)
 * The state-independent part of the denominators and numerators, for all steps at once:
 *     s_ij = sigmoid(ssig_ij x_i - ssm_ij)                         (ssm = ssig smu; i input, j neuron)
 *     base0_j = leak0_j + sum_i s_ij swe_ij,  base1_j = leak1_j + sum_i s_ij sw_ij
 * x (R, I) with R = T·B rows, tables (I, N), leak (2, N), base (R, 2, N). The rows are independent,
 * so both directions split them over threads. Backward, with gb = d base:
 *     dS_ij = (gb0_j swe_ij + gb1_j sw_ij) s_ij (1 - s_ij),  d x_i = sum_j dS_ij ssig_ij,
 *     d swe_ij += s gb0_j, d sw_ij += s gb1_j, d ssig_ij += dS x_i, d ssm_ij -= dS, d leak += gb. */
static LF_KERNEL int LF_SFX(ltc_sensory_fwd)(int64_t R, int64_t I, int64_t N, const REAL *restrict x,
                                             const REAL *restrict leak, const REAL *restrict sw,
                                             const REAL *restrict swe, const REAL *restrict ssig,
                                             const REAL *restrict ssm, REAL *restrict base, int nt) {
    if (nt < 1) nt = 1;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(dynamic, 16)
    for (int64_t r = 0; r < R; r++) {
        REAL *num = base + r * 2 * N, *den = num + N;
        memcpy(num, leak, sizeof(REAL) * 2 * N);
        LF_SFX(rows_fwd)(I, N, x + r * I, ssig, ssm, sw, swe, num, den);
    }
    return 0;
}

static LF_KERNEL int LF_SFX(ltc_sensory_bwd)(int64_t R, int64_t I, int64_t N, const REAL *restrict x,
                                             const REAL *restrict sw, const REAL *restrict swe,
                                             const REAL *restrict ssig, const REAL *restrict ssm,
                                             const REAL *restrict gbase, REAL *restrict gx, REAL *restrict gleak,
                                             REAL *restrict gsw, REAL *restrict gswe, REAL *restrict gssig,
                                             REAL *restrict gssm, int need_w, int nt) {
    const int64_t IN = I * N;
    const int64_t per = 2 * N + (need_w ? 4 * IN : 0);
    REAL *tab, *scratch = LF_SFX(kernel_alloc)(per, &nt, 1, 0, NULL, NULL, &tab); /* no tableau: tab = NULL */
    if (!scratch) return -1;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        REAL *my = scratch + (size_t)omp_get_thread_num() * per;
        REAL *al = my, *acc = need_w ? my + 2 * N : NULL;
#pragma omp for schedule(dynamic, 1)
        for (int64_t r = 0; r < R; r++) {
            const REAL *xr = x + r * I, *g0 = gbase + r * 2 * N, *g1 = g0 + N;
            REAL *gxr = gx ? gx + r * I : NULL;
            for (int64_t j = 0; j < 2 * N; j++) al[j] += g0[j];
            for (int64_t i = 0; i < I; i++) {
                const int64_t o = i * N;
                const REAL red = LF_SFX(row_bwd)(N, xr[i], ssig + o, ssm + o, sw + o, swe + o, g0, g1,
                                                 acc ? acc + o : NULL, IN);
                if (gxr) gxr[i] = red;
            }
        }
    }
    for (int64_t x2 = 0; x2 < 2 * N; x2++) {
        REAL s = 0;
        for (int p = 0; p < nt; p++) s += scratch[(size_t)p * per + x2];
        gleak[x2] = s;
    }
    if (need_w) LF_SFX(sum_four)(scratch + 2 * N, per, nt, IN, 1, gsw, gswe, gssig, gssm);
    free(scratch);
    return 0;
}

/* ------------------------------------------------------------------------------ entry points
 * stages > 0: the explicit RK solver with tableau rk_a, rk_b; otherwise the semi-implicit one. */
#define LF_STAGES(a) ((a)->stages > 0 ? (a)->stages : 0)

int LF_SFX(lf_ltc_dense_fwd)(const lf_ltc_seq *a) {
    return LF_SFX(ltc_dense_fwd)(a->steps, a->batch, a->neurons, a->unfolds, LF_STAGES(a), a->rk_a, a->rk_b, a->base,
                                 a->c, a->keep, a->h0, a->w, a->we, a->sigma, a->sm, a->states, a->v, a->d,
                                 a->lstm_pre ? a : NULL, (int)a->threads);
}

int LF_SFX(lf_ltc_dense_bwd)(const lf_ltc_seq *a) {
    return LF_SFX(ltc_dense_bwd)(a->steps, a->batch, a->neurons, a->unfolds, LF_STAGES(a), a->rk_a, a->rk_b, a->c,
                                 a->keep, a->w, a->we, a->sigma, a->sm, a->v, a->d, a->grad_states, a->grad_base,
                                 a->grad_c, a->grad_h0, a->grad_w, a->grad_we, a->grad_sigma, a->grad_sm,
                                 (int)a->need_w, a->lstm_pre ? a : NULL, (int)a->threads);
}

int LF_SFX(lf_ltc_sparse_fwd)(const lf_ltc_seq *a) {
    return LF_SFX(ltc_sparse_fwd)(a->steps, a->batch, a->neurons, a->unfolds, LF_STAGES(a), a->rk_a, a->rk_b,
                                  a->edges, a->base, a->c, a->keep, a->h0, a->w, a->we, a->sigma, a->sm, a->src,
                                  a->dst, a->states, a->v, a->d, a->lstm_pre ? a : NULL, (int)a->threads);
}

int LF_SFX(lf_ltc_sparse_bwd)(const lf_ltc_seq *a) {
    return LF_SFX(ltc_sparse_bwd)(a->steps, a->batch, a->neurons, a->unfolds, LF_STAGES(a), a->rk_a, a->rk_b,
                                  a->edges, a->c, a->keep, a->w, a->we, a->sigma, a->sm, a->src, a->dst, a->v, a->d,
                                  a->grad_states, a->grad_base, a->grad_c, a->grad_h0, a->grad_w, a->grad_we,
                                  a->grad_sigma, a->grad_sm, (int)a->need_w, a->lstm_pre ? a : NULL,
                                  (int)a->threads);
}
#undef LF_STAGES

int LF_SFX(lf_ltc_sensory_fwd)(const lf_ltc_sensory *a) {
    return LF_SFX(ltc_sensory_fwd)(a->rows, a->inputs, a->neurons, a->x, a->leak, a->sw, a->swe, a->ssig, a->ssm,
                                   a->base, (int)a->threads);
}

int LF_SFX(lf_ltc_sensory_bwd)(const lf_ltc_sensory *a) {
    return LF_SFX(ltc_sensory_bwd)(a->rows, a->inputs, a->neurons, a->x, a->sw, a->swe, a->ssig, a->ssm,
                                   a->grad_base, a->grad_x, a->grad_leak, a->grad_sw, a->grad_swe, a->grad_ssig,
                                   a->grad_ssm, (int)a->need_w, (int)a->threads);
}

/* the template's parameters, defined by ltc.c before each inclusion (lstm_impl.h, included first,
 * uses them too) */
#undef REAL
#undef LANES
#undef LF_SIG
#undef LF_SFX
#undef LF_TANH
#undef LF_SIGMOID
