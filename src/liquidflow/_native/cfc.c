/* liquidflow native kernels: cfc (placeholder until the kernels land) */
#include "lf_common.h"

int lf_cfc_version(void) { return 0; }
