#include <oneapi/dnnl/dnnl.h>
// oneDNN in Debian is built on OpenMP (libgomp); the engine sets its thread count through it.
void omp_set_num_threads(int num_threads);
int omp_get_max_threads(void);
