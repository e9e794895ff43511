#include <oneapi/dnnl/dnnl.h>
// oneDNN in Debian is built on OpenMP (libgomp); the engine sets its thread count through it.
void omp_set_num_threads(int num_threads);
int omp_get_max_threads(void);
// libgomp's entry point for `#pragma omp parallel` (GCC ABI, stable since GCC 4.9): the engine runs its own
// parallel loops on the same OpenMP threads as oneDNN, so the two never compete for the cores.
void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned int flags);
int omp_get_thread_num(void);
int omp_get_num_threads(void);
