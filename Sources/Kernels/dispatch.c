// Chooses the kernel table once at start-up from the CPU (cpuid + the OS's saved vector state) and SD3_MAX_ISA,
// and packs attention's keys and values (portable: memory-bound copies).
#include <stdlib.h>
#include <strings.h>
#include "internal.h"
#if defined(__x86_64__)
#include <cpuid.h>
#endif

static int cpu_level = -1;
static int active_level = SD3K_ISA_BASELINE;
static const sd3k_table *active = &sd3k_baseline_table;
static const char *override_error = NULL;
// A level for the calling thread only (tests of every level run beside other tests in one process, which must keep
// the process's level); NULL / -1: the process's.
static _Thread_local const sd3k_table *thread_table = NULL;
static _Thread_local int thread_level = -1;

static inline const sd3k_table *current(void) { return thread_table ? thread_table : active; }

static int detect(void) {
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return SD3K_ISA_BASELINE;
    const int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1;
    if (!osxsave) return SD3K_ISA_BASELINE;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    const int ymm = (lo & 0x6) == 0x6, zmm = (lo & 0xE6) == 0xE6;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return SD3K_ISA_BASELINE;
    const int avx2 = (b >> 5) & 1;
    const int avx512 = ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);
    if (!(ymm && avx2 && fma)) return SD3K_ISA_BASELINE;
    if (!(zmm && avx512)) return SD3K_ISA_AVX2;
    unsigned a1 = 0, b1, c1, d1;
    if (!__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) a1 = 0;
    return ((a1 >> 5) & 1) ? SD3K_ISA_AVX512_BF16 : SD3K_ISA_AVX512;
#else
    return SD3K_ISA_BASELINE;
#endif
}

static int parse_level(const char *s) {
    if (!strcasecmp(s, "baseline")) return SD3K_ISA_BASELINE;
    if (!strcasecmp(s, "avx2")) return SD3K_ISA_AVX2;
    if (!strcasecmp(s, "avx512")) return SD3K_ISA_AVX512;
    if (!strcasecmp(s, "avx512_bf16")) return SD3K_ISA_AVX512_BF16;
    return -1;
}

static const sd3k_table *table(int level) {
    return level >= SD3K_ISA_AVX512 ? &sd3k_avx512_table : level == SD3K_ISA_AVX2 ? &sd3k_avx2_table : &sd3k_baseline_table;
}

// A requested level within what this CPU has (and at least the baseline).
static int clamped(int level) {
    if (cpu_level < 0) cpu_level = detect();
    if (level > cpu_level) level = cpu_level;
    return level < SD3K_ISA_BASELINE ? SD3K_ISA_BASELINE : level;
}

int sd3k_set_isa(int level) {
    level = clamped(level);
    active_level = level;
    active = table(level);
    return level;
}

__attribute__((constructor)) static void choose(void) {
    cpu_level = detect();
    int level = cpu_level;
    const char *cap = getenv("SD3_MAX_ISA");
    if (cap && *cap) {
        const int parsed = parse_level(cap);
        if (parsed < 0) override_error = cap;
        else level = parsed;
    }
    sd3k_set_isa(level);
}

int sd3k_cpu_isa(void) { return cpu_level < 0 ? (cpu_level = detect()) : cpu_level; }
int sd3k_isa(void) { return thread_level >= 0 ? thread_level : active_level; }

int sd3k_set_thread_isa(int level) {
    if (level < 0) {
        thread_table = NULL;
        thread_level = -1;
        return active_level;
    }
    level = clamped(level);
    thread_level = level;
    thread_table = table(level);
    return level;
}
const char *sd3k_isa_override_error(void) { return override_error; }

const char *sd3k_isa_name(int level) {
    switch (level) {
    case SD3K_ISA_AVX2: return "AVX2";
    case SD3K_ISA_AVX512: return "AVX-512";
    case SD3K_ISA_AVX512_BF16: return "AVX-512 with bf16";
    default: return "baseline";
    }
}

void sd3k_softmax_row(const float *in, float *out, long n) { current()->softmax_row(in, out, n); }
void sd3k_gelu_tanh(const float *in, float *out, long n) { current()->gelu_tanh(in, out, n); }
void sd3k_sigmoid_mul(const float *in, float *out, long n, float k) { current()->sigmoid_mul(in, out, n, k); }
void sd3k_layer_norm_row(const float *in, float *out, long n, float eps, const float *weight, const float *bias) {
    current()->layer_norm_row(in, out, n, eps, weight, bias);
}
void sd3k_norm_modulate_row(const float *in, float *out, long n, float eps, const float *shift, const float *scale) {
    current()->norm_modulate_row(in, out, n, eps, shift, scale);
}
void sd3k_rms_norm_row(const float *in, float *out, long n, float eps, const float *weight) {
    current()->rms_norm_row(in, out, n, eps, weight);
}
void sd3k_modulate_row(const float *in, float *out, long n, const float *shift, const float *scale) {
    current()->modulate_row(in, out, n, shift, scale);
}
void sd3k_gated_add_row(const float *x, const float *y, const float *gate, float *out, long n) {
    current()->gated_add_row(x, y, gate, out, n);
}
void sd3k_round_bf16(const float *in, uint16_t *out, long n) { current()->round_bf16(in, out, n); }
void sd3k_widen_bf16(const uint16_t *in, float *out, long n) { current()->widen_bf16(in, out, n); }
void sd3k_exp(const float *in, float *out, long n) { current()->exp(in, out, n); }
void sd3k_gelu_tanh_grad(const float *x, const float *dy, float *out, long n) { current()->gelu_tanh_grad(x, dy, out, n); }
void sd3k_layer_norm_grad_row(const float *x, const float *dy, const float *gain, float *out, long n, float eps, float *mean,
                              float *inverse) {
    current()->layer_norm_grad_row(x, dy, gain, out, n, eps, mean, inverse);
}

// ---- attention ----

// Queries per task of the forward kernels (their scratch is sized for it): 64, or 60 for AVX2's 6-row tiles.
static long native_block(const sd3k_attention_t *a) { return a->bf16 ? 64 : a->level == SD3K_ISA_AVX2 ? 60 : 64; }

void sd3k_attention_prepare(sd3k_attention_t *a) {
    a->level = sd3k_isa();
    a->bf16 = a->bf16 && a->level >= SD3K_ISA_AVX512_BF16;
    if (a->block <= 0 || a->block > native_block(a)) a->block = native_block(a);
}

static int uses_bf16(const sd3k_attention_t *a) { return a->bf16; }

long sd3k_attention_packed_bytes(const sd3k_attention_t *a) {
    const long units = a->batch * a->heads;
    return uses_bf16(a) ? units * sd3k_unit_halves(a->head_size, a->keys) * 2 : units * sd3k_unit_floats(a->head_size, a->keys) * 4;
}

long sd3k_attention_tasks(const sd3k_attention_t *a) {
    return a->batch * a->heads * ((a->queries + a->block - 1) / a->block);
}

int sd3k_attention_pack(const sd3k_attention_t *a, long begin, long end) {
    const long d = a->head_size, nk = a->keys, nkp = sd3k_round_up(nk, 32), dp = sd3k_round_up(d, 16);
    for (long unit = begin; unit < end; unit++) {
        const long b = unit / a->heads, h = unit % a->heads;
        const float *k = a->k + b * nk * a->ldk + h * d, *v = a->v + b * nk * a->ldv + h * d;
        if (uses_bf16(a)) {
            // Rows are rounded with the vector kernel into `row`, then placed as 32-bit pairs: keys' pairs run along
            // the head dimension ([d/2][nkp] pairs), values' pairs along the keys ([nkp/2][dp] pairs).
            const long dh = (d + 1) / 2;
            uint16_t *kb = (uint16_t *)a->packed + unit * sd3k_unit_halves(d, nk), *vb = kb + 2 * dh * nkp;
            memset(kb, 0, sizeof(uint16_t) * (size_t)sd3k_unit_halves(d, nk));
            uint16_t *row = malloc(sizeof(uint16_t) * (size_t)(2 * dp + 2));
            if (!row) return -1;
            uint16_t *next = row + dp + 1;
            uint32_t *kp = (uint32_t *)kb, *vp = (uint32_t *)vb;
            for (long j = 0; j < nk; j++) {
                row[d] = 0;
                table(a->level)->round_bf16(k + j * a->ldk, row, d);
                for (long p = 0; p < dh; p++) kp[p * nkp + j] = (uint32_t)row[2 * p] | (uint32_t)row[2 * p + 1] << 16;
            }
            for (long j = 0; j < nk; j += 2) {
                table(a->level)->round_bf16(v + j * a->ldv, row, d);
                if (j + 1 < nk) table(a->level)->round_bf16(v + (j + 1) * a->ldv, next, d);
                else memset(next, 0, sizeof(uint16_t) * (size_t)d);
                uint32_t *out = vp + (j / 2) * dp;
                for (long c = 0; c < d; c++) out[c] = (uint32_t)row[c] | (uint32_t)next[c] << 16;
            }
            free(row);
        } else {
            float *kt = (float *)a->packed + unit * sd3k_unit_floats(d, nk), *vp = kt + d * nkp;
            memset(kt, 0, sizeof(float) * (size_t)sd3k_unit_floats(d, nk));
            for (long j = 0; j < nk; j++)
                for (long c = 0; c < d; c++) kt[c * nkp + j] = k[j * a->ldk + c];
            for (long j = 0; j < nk; j++) memcpy(vp + j * dp, v + j * a->ldv, sizeof(float) * (size_t)d);
        }
    }
    return 0;
}

int sd3k_attention_run(const sd3k_attention_t *a, long begin, long end) {
    return uses_bf16(a) ? sd3k_attention_run_bf16(a, begin, end) : table(a->level)->attention_run(a, begin, end);
}

// ---- attention backward ----

void sd3k_attention_backward_prepare(sd3k_attention_backward_t *a) {
    a->level = sd3k_isa();
    a->bf16 = a->bf16 && a->level >= SD3K_ISA_AVX512_BF16;
    if (a->block <= 0) a->block = 64;
    if (a->block > 256) a->block = 256;
}

int sd3k_attention_backward_run(const sd3k_attention_backward_t *a, long begin, long end) {
    return a->bf16 ? sd3k_attention_backward_run_bf16(a, begin, end) : table(a->level)->attention_backward_run(a, begin, end);
}
