// Shared by the per-instruction-set files: the kernel table, scalar helpers for loop tails, packed layouts.
#ifndef SD3_KERNELS_INTERNAL_H
#define SD3_KERNELS_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#include "Kernels.h"

/// Keys per block of the attention loop: 256 scores of a row (1 KiB) per block, the block's scores in L1/L2.
#define ABK 256

typedef struct {
    void (*softmax_row)(const float *, float *, long);
    void (*gelu_tanh)(const float *, float *, long);
    void (*sigmoid_mul)(const float *, float *, long, float);
    void (*layer_norm_row)(const float *, float *, long, float, const float *, const float *);
    void (*norm_modulate_row)(const float *, float *, long, float, const float *, const float *);
    void (*rms_norm_row)(const float *, float *, long, float, const float *);
    void (*modulate_row)(const float *, float *, long, const float *, const float *);
    void (*gated_add_row)(const float *, const float *, const float *, float *, long);
    void (*round_bf16)(const float *, uint16_t *, long);
    void (*widen_bf16)(const uint16_t *, float *, long);
    void (*exp)(const float *, float *, long);
    int (*attention_run)(const sd3k_attention_t *, long, long);
    int (*attention_backward_run)(const sd3k_attention_backward_t *, long, long);
    void (*gelu_tanh_grad)(const float *, const float *, float *, long);
    void (*layer_norm_grad_row)(const float *, const float *, const float *, float *, long, float, float *, float *);
} sd3k_table;

extern const sd3k_table sd3k_baseline_table, sd3k_avx2_table, sd3k_avx512_table;
int sd3k_attention_run_bf16(const sd3k_attention_t *a, long begin, long end);
int sd3k_attention_backward_run_bf16(const sd3k_attention_backward_t *a, long begin, long end);

static inline long sd3k_round_up(long n, long m) { return (n + m - 1) / m * m; }

/// fp32 packed unit: keys transposed [d][round_up(nk, 32)], then values [round_up(nk, 32)][round_up(d, 16)].
static inline long sd3k_unit_floats(long d, long nk) { return sd3k_round_up(nk, 32) * (d + sd3k_round_up(d, 16)); }
/// bf16 packed unit (uint16 count): keys [⌈d/2⌉][round_up(nk, 32)][2], values [round_up(nk, 32)/2][round_up(d, 16)][2].
static inline long sd3k_unit_halves(long d, long nk) {
    return sd3k_round_up(nk, 32) * (2 * ((d + 1) / 2) + sd3k_round_up(d, 16));
}

/// exp with the vector kernels' algorithm (Cody–Waite reduction, degree-7 Taylor polynomial): within about 2 ulp
/// of expf; below −87.33 gives 0, above 88.72 +inf, NaN stays NaN.
static inline float sd3k_exp1(float x) {
    if (x != x) return x;
    if (x < -87.33f) return 0.0f;
    if (x > 88.72f) return INFINITY;
    const float shifted = x * 1.442695040888963f + 12582912.0f;
    const float n = shifted - 12582912.0f;
    const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-6f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1;
    p = p * r + 1;
    return ldexpf(p, (int)n);
}

static inline float sd3k_gelu1(float x) {
    const float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
    const float e = sd3k_exp1(-2.0f * fabsf(u));
    const float t = copysignf((1 - e) / (1 + e), u);
    return 0.5f * x * (1 + t);
}

static inline uint16_t sd3k_bf16_1(float x) {
    uint32_t bits;
    memcpy(&bits, &x, 4);
    if (x != x) return (uint16_t)((bits >> 16) | 0x40);
    return (uint16_t)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}


/* The attention backward's write-out, shared by its fp32 and bf16 forms: a query block's dQ [rows, d] (scaled on
   the way out) from its padded rows [rows, dp], and a head's dK, dV [nk, d] from theirs. */
static inline void sd3k_attention_backward_store_dq(const sd3k_attention_backward_t *a, long base, long rows, long d,
                                                    const float *dq, long dp) {
    for (long r = 0; r < rows; r++)
        for (long c = 0; c < d; c++) a->dq[base + r * a->ldq + c] = dq[r * dp + c] * a->scale;
}

static inline void sd3k_attention_backward_store_dkdv(const sd3k_attention_backward_t *a, long b, long h, long nk, long d,
                                                      const float *dk, const float *dv, long dp) {
    float *dkh = a->dk + b * nk * a->ldk + h * d, *dvh = a->dv + b * nk * a->ldk + h * d;
    for (long j = 0; j < nk; j++)
        for (long c = 0; c < d; c++) {
            dkh[j * a->ldk + c] = dk[j * dp + c];
            dvh[j * a->ldk + c] = dv[j * dp + c];
        }
}

#endif
