/* The interface between liquidflow's Python code and its native kernels: one struct per call, read
 * by field name on both sides. Every struct here is mirrored field by field by a ctypes.Structure in
 * liquidflow/_ops/native_abi.py (same order, same names, all fields 8 bytes: int64_t, double or a
 * pointer). Change both together and bump the kernel's LF_*_ABI_VERSION.
 *
 * Each library exports, for the check Python makes when it loads the library:
 *     int64_t lf_<kernel>_abi_version(void)
 *     int64_t lf_<kernel>_struct_size(const char *type)                    sizeof, or -1: unknown type
 *     int64_t lf_<kernel>_field_offset(const char *type, const char *field)  offsetof, or -1: unknown
 * made by LF_ABI_EXPORTS from a table in <kernel>.c that lists every field of the kernel's structs.
 *
 * Pointers are untyped: the kernels are compiled for float and for double from one struct, and
 * cast each pointer to the REAL of the entry point called (the _f32 or _f64 suffix). */
#ifndef LF_ABI_H
#define LF_ABI_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

_Static_assert(sizeof(void *) == 8 && sizeof(double) == 8, "64-bit pointers expected (the structs have 8-byte fields)");

#define LF_CFC_ABI_VERSION 6
#define LF_LTC_ABI_VERSION 5
#define LF_STEP_ABI_VERSION 2

/* ------------------------------------------------------------------------------------------ CfC */
/* a matrix or vector read in place: element (i, j) is data[i stride0 + j stride1] (vectors: j = 0) */
typedef struct lf_strided {
    const void *data; /* NULL: absent */
    int64_t stride0, stride1;
} lf_strided;

/* backbone activations of lf_cfc_layer (lecun_tanh = 1.7159 tanh(0.666 u); gelu the erf form); the
 * head activation (f1, f2) is LF_CFC_ACT_TANH or LF_CFC_ACT_LECUN_TANH */
#define LF_CFC_ACT_LECUN_TANH 0
#define LF_CFC_ACT_TANH 1
#define LF_CFC_ACT_RELU 2
#define LF_CFC_ACT_GELU 3
#define LF_CFC_ACT_SILU 4

/* modes of lf_cfc_layer */
#define LF_CFC_MODE_DEFAULT 0 /* h' = f2 + g (f1 - f2) */
#define LF_CFC_MODE_NO_GATE 1 /* h' = f1 g + f2 */
#define LF_CFC_MODE_PURE 2    /* h' = A - A exp(-dt (|w_tau| + |u1|)) u1, u1 the one head (H columns) */

#define LF_CFC_MAXBB 4 /* backbone layers of one lf_cfc_layer at most */

/* backbone layer k >= 1 of a lf_cfc_layer: z_k = act(z_{k-1} W_k^T + b_k) (times its dropout
 * multipliers where given); all backbone layers have the width K */
typedef struct lf_cfc_deep {
    lf_strided w_t; /* (K, K): element (i, j) is W_k[j, i] */
    lf_strided b;   /* (K) */
    const void *drop; /* (T, B, K) dropout multipliers (0 or 1 / (1 - p)), or NULL */
    void *z;        /* saved (T, B, K) z_k (after dropout) */
    void *zd;       /* saved (T, B, K) act'(u_k) times the dropout multiplier, or NULL (see lf_cfc_layer.zd) */
    void *grad_w_t, *grad_b; /* (K, K), (K), or NULL */
} lf_cfc_deep;

/* the mixed-memory LSTM that runs before the chain at every step (lstm_impl.h): its output h_l
 * replaces the state the chain's layers read; a step not observed keeps both h and c */
typedef struct lf_cfc_lstm {
    int64_t size;     /* N: the chain's state size */
    lf_strided r_t;   /* (N, 4N): element (k, j) is R[j, k], R the recurrent weight (4N, N) */
    const void *pre;  /* (T, B, 4N) input part of the gates, bias included */
    const void *c0;   /* (B, N) */
    void *c;          /* (T, B, N) out: the cell states after each step */
    void *hl;         /* (T, B, N) saved LSTM outputs, or NULL (inference) */
    void *gates;      /* (T, B, 4N) saved gates (lstm_impl.h), or NULL (inference) */
    const void *grad_c; /* backward: (T, B, N) gradient at c, or NULL */
    void *grad_pre;   /* backward: (T, B, 4N) or NULL */
    void *grad_r_t;   /* backward: (N, 4N) or NULL */
    void *grad_c0;    /* backward: (B, N) or NULL */
} lf_cfc_lstm;

/* one layer of a CfC chain (cfc.c), an array of them per call */
typedef struct lf_cfc_layer {
    int64_t hidden;   /* H */
    int64_t width;    /* K: outputs of the first linear map (backbone units, or the heads without a backbone) */
    int64_t in_size;  /* I: inputs of the map from layer l-1's new state (0 for layer 0) */
    int64_t backbone; /* backbone layers, 0..LF_CFC_MAXBB: z_0 = act(u), z_k = act(W_k z_{k-1} + b_k), then the
                         heads HwT; 0: the first map gives the heads */
    int64_t mode;     /* LF_CFC_MODE_* */
    int64_t offset;   /* of the layer's state in the chain state (B, N) */
    int64_t activation; /* the backbone's act, LF_CFC_ACT_* (the codes of the step kernel, step_impl.h) */
    int64_t head_activation; /* f1, f2: LF_CFC_ACT_TANH or LF_CFC_ACT_LECUN_TANH (not pure) */
    lf_strided wx_t;  /* (I, K), layer 0: absent (its input map is the caller's P) */
    lf_strided wh_t;  /* (H, K) */
    lf_strided b;     /* (K), layer 0: absent */
    lf_strided hw_t;  /* (K, V) heads, V = 4H [f1, f2, time_a, time_b] or H [f1] (pure); absent without a backbone */
    lf_strided hb;    /* (V) */
    lf_strided a, w_tau; /* (H) each: pure mode only */
    const lf_cfc_deep *deep; /* backbone - 1 of them (backbone layers 1..), or NULL */
    const void *drop; /* (T, B, K) dropout multipliers of backbone layer 0, or NULL */
    /* saved by the forward pass for the backward pass (NULL: not saved, inference) */
    void *z; /* (T, B, K) backbone layer 0's activations (after dropout) */
    void *f; /* (T, B, 2H) [f1, f2]; pure: [u1, exp(-dt (|w_tau| + |u1|))] */
    void *g; /* (T, B, H) gate (not pure) */
    void *zd; /* (T, B, K) act'(u) times the dropout multiplier: gelu, silu, or with dropout; else NULL (the
                 derivative then follows from z) */
    /* outputs of the backward pass (NULL: not wanted), contiguous */
    void *grad_u; /* (T, B, K) gradient at the first map's output (layer 0: dP) */
    void *grad_wx_t, *grad_wh_t, *grad_b, *grad_hw_t, *grad_hb; /* in the shapes above */
    void *grad_a, *grad_w_tau; /* (H) each: pure mode */
} lf_cfc_layer;

/* -------------------------------------------------------------------------------- LTC sequences */
/* dense (N, N) or edge-list (E) LTC over a whole sequence (ltc.c), semi-implicit or explicit
 * Runge-Kutta; the forward pass reads the inputs and writes states, v, d; the backward pass reads c,
 * keep, the tables, v, d, grad_states */
typedef struct lf_ltc_seq {
    int64_t steps, batch, neurons, unfolds; /* T, B, N, L */
    int64_t edges;                          /* E (edge-list kernels only) */
    int64_t need_w;                         /* backward: 1 when the table gradients are wanted */
    int64_t threads;
    const void *base;                 /* (T, B, 2, N) */
    const void *c;                    /* (T, B, N) C_m / (dt / L) */
    const void *keep;                 /* (T, B) bytes, or NULL */
    const void *h0;                   /* (B, N) */
    const void *w, *we, *sigma, *sm;  /* (N, N) or (E) */
    const void *src, *dst;            /* (E) int64: edge-list kernels only */
    void *states;                     /* (T, B, N) */
    void *v, *d;                      /* saved potentials and denominators (layouts in ltc_impl.h), or NULL */
    const void *grad_states;          /* (T, B, N) */
    void *grad_base, *grad_c, *grad_h0, *grad_w, *grad_we, *grad_sigma, *grad_sm;
    /* the solver: stages = 0 the semi-implicit step; stages = S >= 1 an explicit Runge-Kutta method
     * with Butcher tableau rk_a (S, S) row-major (strictly lower triangular) and weights rk_b (S),
     * always double; base then holds no epsilon (ltc_impl.h, "explicit Runge-Kutta") */
    int64_t stages;
    const double *rk_a, *rk_b;
    /* mixed memory (lstm_pre NULL: none): the LSTM step of lstm_impl.h runs before
     * the LTC step at every observed step, and the LTC step starts from its output h_l; a step not
     * observed keeps h and c. The backward pass also reads h0, states, lstm_c0 and lstm_c. */
    const void *lstm_pre;             /* (T, B, 4N) input part of the gates, bias included */
    const void *lstm_r, *lstm_r_t;    /* (4N, N) the recurrent weight, (N, 4N) its transpose */
    const void *lstm_c0;              /* (B, N) */
    void *lstm_c;                     /* (T, B, N) out: the cell states after each step */
    void *lstm_hl, *lstm_gates;       /* (T, B, N), (T, B, 4N) saved for the backward pass, or NULL */
    const void *lstm_grad_c;          /* backward: (T, B, N) gradient at lstm_c, or NULL */
    void *lstm_grad_pre, *lstm_grad_r_t, *lstm_grad_c0; /* backward: (T, B, 4N), (N, 4N) or NULL, (B, N) */
} lf_ltc_seq;

/* the sensory synapses and the leak of all T B rows at once (ltc.c) */
typedef struct lf_ltc_sensory {
    int64_t rows, inputs, neurons; /* R = T B, I, N */
    int64_t need_w;                /* backward: 1 when the table gradients are wanted */
    int64_t threads;
    const void *x;                      /* (R, I) */
    const void *leak;                   /* (2, N) */
    const void *sw, *swe, *ssig, *ssm;  /* (I, N) */
    void *base;                         /* (R, 2, N) */
    const void *grad_base;              /* (R, 2, N) */
    void *grad_x;                       /* (R, I) or NULL */
    void *grad_leak, *grad_sw, *grad_swe, *grad_ssig, *grad_ssm;
} lf_ltc_sensory;

/* ----------------------------------------------------------------------------- streaming step */
/* a linear map read in place: weight (out, in) row-major, bias (out) or NULL */
typedef struct lf_step_linear {
    const void *weight, *bias;
} lf_step_linear;

/* one CfCCell: a dense cell, or one sub-layer of a WiredCfCCell (its input is the previous
 * sub-layer's new state) */
typedef struct lf_step_cfc_layer {
    int64_t in_size, hidden, backbone_layers, backbone_units;
    const lf_step_linear *backbone; /* backbone_layers of them */
    lf_step_linear f1, f2, time_a, time_b; /* pure mode: f1 only */
    const void *w_tau, *a;                 /* pure mode: (H) each */
    const void *sparsity_mask;             /* (H, width) of f1 and f2, or NULL */
} lf_step_cfc_layer;

typedef struct lf_step_cfc_plan {
    int64_t layers;     /* 1 for a CfCCell, the wiring's layers for a WiredCfCCell */
    int64_t activation; /* backbone activation, codes as _native_step._ACTIVATIONS */
    int64_t mode;       /* 0 default, 1 no_gate, 2 pure */
    int64_t proj;       /* outputs of fc, 0: no fc */
    int64_t state_size, in_size;
    const lf_step_cfc_layer *layer; /* `layers` of them */
    lf_step_linear fc;
} lf_step_cfc_plan;

typedef struct lf_step_ltc_plan {
    int64_t state_size, in_size, motor_size, unfolds;
    int64_t input_mapping, output_mapping; /* 0 none, 1 linear, 2 affine */
    int64_t proj;                          /* outputs of fc, 0: no fc */
    double epsilon;
    const void *gleak_raw, *vleak, *cm_raw;                /* (N) */
    const void *w_raw, *sigma, *mu, *erev;                 /* (N, N) */
    const void *sensory_w_raw, *sensory_sigma, *sensory_mu, *sensory_erev; /* (I, N) */
    const void *sparsity_mask, *sensory_sparsity_mask;     /* (N, N), (I, N) */
    const void *input_w, *input_b, *output_w, *output_b;   /* (I), (I), (M), (M), or NULL */
    lf_step_linear fc;
} lf_step_ltc_plan;

/* ------------------------------------------------------------------------- the self-description */
typedef struct lf_abi_field {
    const char *type, *field; /* field "": the struct itself */
    int64_t value;            /* offsetof, or for the struct itself sizeof */
} lf_abi_field;

#define LF_ABI_STRUCT(type) {#type, "", (int64_t)sizeof(type)}
#define LF_ABI_FIELD(type, name) {#type, #name, (int64_t)offsetof(type, name)}

static inline int64_t lf_abi_lookup(const lf_abi_field *table, size_t n, const char *type, const char *field) {
    if (!type || !field) return -1;
    for (size_t k = 0; k < n; k++)
        if (!strcmp(table[k].type, type) && !strcmp(table[k].field, field)) return table[k].value;
    return -1;
}

/* defines the three exported functions of a library from its table */
#define LF_ABI_EXPORTS(kernel, version, table)                                                       \
    int64_t lf_##kernel##_abi_version(void) { return (version); }                                  \
    int64_t lf_##kernel##_struct_size(const char *type) {                                          \
        return lf_abi_lookup(table, sizeof table / sizeof table[0], type, "");                      \
    }                                                                                              \
    int64_t lf_##kernel##_field_offset(const char *type, const char *field) {                      \
        return field && *field ? lf_abi_lookup(table, sizeof table / sizeof table[0], type, field) : -1; \
    }

#endif
