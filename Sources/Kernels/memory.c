// glibc's allocator settings for FreedMemoryReuse (Sources/Tensors): malloc.h is not part of Swift's Glibc module.
#include "Kernels.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

void sd3k_keep_freed_memory(int keep) {
#if defined(__GLIBC__)
    if (keep) {
        mallopt(M_MMAP_MAX, 0);
        mallopt(M_TRIM_THRESHOLD, 0x7FFFFFFF);
    } else {
        // glibc's defaults (malloc.c: DEFAULT_MMAP_MAX, DEFAULT_TRIM_THRESHOLD), then the free pages go back.
        mallopt(M_MMAP_MAX, 65536);
        mallopt(M_TRIM_THRESHOLD, 128 * 1024);
        malloc_trim(0);
    }
#else
    (void)keep;
#endif
}
