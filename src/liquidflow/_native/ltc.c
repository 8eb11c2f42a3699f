/* liquidflow native kernels: LTC sequences with the semi-implicit solver (dense and edge-list),
 * forward and backward. The bodies are in ltc_impl.h, compiled once for float (vectorisable
 * lf_sigmoidf) and once for double (libm, for the float64 tests). */
#include <omp.h>
#include <stdlib.h>

#include "lf_common.h"

int lf_ltc_version(void) { return 2; }

/* LANES: batch rows per vector in the edge-list kernels (64 bytes: one AVX-512 register) */
#define REAL float
#define LANES 16
#define LF_SIG lf_sigmoidf
#define LF_SFX(name) name##_f32
#include "ltc_impl.h"
#undef REAL
#undef LANES
#undef LF_SIG
#undef LF_SFX

#define REAL double
#define LANES 8
#define LF_SIG lf_sigmoid
#define LF_SFX(name) name##_f64
#include "ltc_impl.h"
#undef REAL
#undef LANES
#undef LF_SIG
#undef LF_SFX
