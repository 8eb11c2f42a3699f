/* liquidflow native kernels: ltc (placeholder until the kernels land) */
#include "lf_common.h"

int lf_ltc_version(void) { return 0; }
