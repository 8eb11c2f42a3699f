/* liquidflow native kernels: step (placeholder until the kernels land) */
#include "lf_common.h"

int lf_step_version(void) { return 0; }
