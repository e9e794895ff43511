// AVX-512 (F, BW, DQ, VL): 16 lanes; and, where the CPU has AVX512_BF16, attention with bf16 products (vdpbf16ps).
#include "internal.h"
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma"))), apply_to = function)

typedef __m512 vf;
#define VW 16
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps(p, v)
#define VSET1(x) _mm512_set1_ps(x)
#define VZERO() _mm512_setzero_ps()
#define VADD(a, b) _mm512_add_ps(a, b)
#define VSUB(a, b) _mm512_sub_ps(a, b)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VDIV(a, b) _mm512_div_ps(a, b)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VMAX(a, b) _mm512_max_ps(a, b)
#define VABS(a) _mm512_abs_ps(a)
#define VCOPYSIGN(a, b) _mm512_or_ps(_mm512_abs_ps(a), _mm512_and_ps(_mm512_set1_ps(-0.0f), b))
#define VHMAX(v) _mm512_reduce_max_ps(v)
#define VHSUM(v) _mm512_reduce_add_ps(v)
#define VHSUMD(v) hsumd_avx512(v)
#define v_exp exp_avx512
#define RB 8
#define RB2 4
#define NV 4
#define RLCM 8
#define QROWS 64
#define K(name) name##_avx512

static inline double hsumd_avx512(__m512 v) {
    return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)),
                                              _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1))));
}

// e^c for c already within [−87.33, 88.72] (or NaN, which stays NaN): n = round(c / ln 2), r = c − n·ln 2 in two
// parts, a degree-7 polynomial for e^r, and vscalefps for 2ⁿ (every n in range).
static inline __m512 exp_reduced_avx512(__m512 c) {
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    const __m512 n = _mm512_sub_ps(_mm512_fmadd_ps(c, _mm512_set1_ps(1.442695040888963f), magic), magic);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), c);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-6f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

// sd3k_exp1's algorithm, 16 lanes: below −87.33 gives 0, above 88.72 +inf, NaN stays NaN.
static inline __m512 exp_avx512(__m512 x) {
    const __m512 lo = _mm512_set1_ps(-87.33f), hi = _mm512_set1_ps(88.72f);
    __m512 p = exp_reduced_avx512(_mm512_min_ps(_mm512_max_ps(x, lo), hi));
    p = _mm512_mask_mov_ps(p, _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), _mm512_setzero_ps());
    p = _mm512_mask_mov_ps(p, _mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ), _mm512_set1_ps(INFINITY));
    return _mm512_mask_mov_ps(p, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

#include "impl.h"

static inline __m256i round16_avx512(__m512 x) {
    const __m512i bits = _mm512_castps_si512(x);
    const __m512i high = _mm512_srli_epi32(bits, 16);
    __m512i rounded = _mm512_srli_epi32(
        _mm512_add_epi32(bits, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), _mm512_and_si512(high, _mm512_set1_epi32(1)))), 16);
    rounded = _mm512_mask_mov_epi32(rounded, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), _mm512_or_si512(high, _mm512_set1_epi32(0x40)));
    return _mm512_cvtepi32_epi16(rounded);
}

static void round_bf16_avx512(const float *in, uint16_t *out, long n) {
    long i = 0;
    for (; i + 16 <= n; i += 16) _mm256_storeu_si256((__m256i *)(out + i), round16_avx512(_mm512_loadu_ps(in + i)));
    for (; i < n; i++) out[i] = sd3k_bf16_1(in[i]);
}

static void widen_bf16_avx512(const uint16_t *in, float *out, long n) {
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(in + i)));
        _mm512_storeu_ps(out + i, _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16)));
    }
    for (; i < n; i++) {
        uint32_t bits = (uint32_t)in[i] << 16;
        memcpy(out + i, &bits, 4);
    }
}

#pragma clang attribute pop

const sd3k_table sd3k_avx512_table = {
    softmax_row_avx512, gelu_tanh_avx512, sigmoid_mul_avx512, layer_norm_row_avx512,
    norm_modulate_row_avx512, rms_norm_row_avx512, modulate_row_avx512, gated_add_row_avx512,
    round_bf16_avx512, widen_bf16_avx512, exp_all_avx512, attention_run_avx512,
    attention_backward_run_avx512, gelu_tanh_grad_avx512, layer_norm_grad_row_avx512,
};

// ---- bf16 attention (AVX512_BF16): vdpbf16ps adds a·b over pairs of bf16 into fp32 lanes ----
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma"))), apply_to = function)

static inline __m512 dot_pairs(__m512 acc, __m512i a, __m512i b) {
    return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b);
}

// S[8 rows][32 keys] = Qb[8][2·dh] · Kb (pairs [dh][nkp][2]).
static inline void qk_tile_bf16(const uint16_t *qb, long dh, const uint16_t *kb, long nkp, float *s, long lds) {
    __m512 acc[8][2];
    for (int r = 0; r < 8; r++) { acc[r][0] = _mm512_setzero_ps(); acc[r][1] = _mm512_setzero_ps(); }
    for (long p = 0; p < dh; p++) {
        const __m512i k0 = _mm512_loadu_si512(kb + p * nkp * 2), k1 = _mm512_loadu_si512(kb + p * nkp * 2 + 32);
        for (int r = 0; r < 8; r++) {
            uint32_t pair;
            memcpy(&pair, qb + r * 2 * dh + 2 * p, 4);
            const __m512i q = _mm512_set1_epi32((int)pair);
            acc[r][0] = dot_pairs(acc[r][0], q, k0);
            acc[r][1] = dot_pairs(acc[r][1], q, k1);
        }
    }
    for (int r = 0; r < 8; r++) { _mm512_storeu_ps(s + r * lds, acc[r][0]); _mm512_storeu_ps(s + r * lds + 16, acc[r][1]); }
}

// O[4 rows][16·nv] += Pb[4][pairs·2] · Vb (pairs [.][dp][2]); nv is 4 or 1.
#define PV_TILE_BF16(NAME, NVEC)                                                                             \
    static inline void NAME(const uint16_t *pb, long ldp, long pairs, const uint16_t *vb, long dp, float *o, long ldo) { \
        __m512 acc[4][NVEC];                                                                                 \
        for (int r = 0; r < 4; r++)                                                                          \
            for (int x = 0; x < NVEC; x++) acc[r][x] = _mm512_loadu_ps(o + r * ldo + x * 16);                \
        for (long j = 0; j < pairs; j++) {                                                                   \
            __m512i vv[NVEC];                                                                                \
            for (int x = 0; x < NVEC; x++) vv[x] = _mm512_loadu_si512(vb + (j * dp + x * 16) * 2);           \
            for (int r = 0; r < 4; r++) {                                                                    \
                uint32_t pair;                                                                               \
                memcpy(&pair, pb + r * ldp + 2 * j, 4);                                                      \
                const __m512i p = _mm512_set1_epi32((int)pair);                                              \
                for (int x = 0; x < NVEC; x++) acc[r][x] = dot_pairs(acc[r][x], p, vv[x]);                   \
            }                                                                                                \
        }                                                                                                    \
        for (int r = 0; r < 4; r++)                                                                          \
            for (int x = 0; x < NVEC; x++) _mm512_storeu_ps(o + r * ldo + x * 16, acc[r][x]);                \
    }
PV_TILE_BF16(pv_tile_bf16_wide, 4)
PV_TILE_BF16(pv_tile_bf16_one, 1)

// exp for the softmax, whose arguments are s − max ≤ 0: no overflow to handle, and max(lo, x) returns x when x is NaN
// so NaN propagates without a blend; below −87.33 it gives e^−87.33 (1.2e−38, where exp_avx512 gives 0), nothing
// next to the row's largest probability, 1.
static inline __m512 exp_nonpositive(__m512 x) {
    return exp_reduced_avx512(_mm512_max_ps(_mm512_set1_ps(-87.33f), x));
}

// Probabilities to bf16 with the CPU's own conversion (round to nearest even, as sd3k_round_bf16 for values in [0, 1]).
static inline __m256i to_bf16(__m512 x) { return (__m256i)_mm512_cvtneps_pbh(x); }

// online_softmax with the probabilities written as bf16 pairs (pb) for the value product; the row sums stay fp32
// (as torch's CPU flash attention). Columns [nb, width) of pb are zero; the block's tail uses masked lanes.
static void online_softmax_bf16(const float *s, uint16_t *pb, long lds, long rows, long nb, long width, float *m, float *l,
                                float *o, long ldo, long dp) {
    const long full = nb / 16 * 16;
    const __mmask16 tail = (__mmask16)((1u << (nb - full)) - 1);
    for (long r = 0; r < rows; r++) {
        const float *sr = s + r * lds;
        uint16_t *pr = pb + r * lds;
        __m512 vm = _mm512_set1_ps(m[r]);
        for (long j = 0; j < full; j += 16) vm = _mm512_max_ps(vm, _mm512_loadu_ps(sr + j));
        if (tail) vm = _mm512_max_ps(vm, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail, sr + full));
        const float mx = _mm512_reduce_max_ps(vm);
        const float correction = sd3k_exp1(m[r] - mx);
        const __m512 vmx = _mm512_set1_ps(mx);
        // Four independent chains so the exp's latency overlaps.
        __m512 vs = _mm512_setzero_ps(), vs1 = _mm512_setzero_ps(), vs2 = _mm512_setzero_ps(), vs3 = _mm512_setzero_ps();
        long j = 0;
        for (; j + 64 <= full; j += 64) {
            const __m512 e0 = exp_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(sr + j), vmx));
            const __m512 e1 = exp_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(sr + j + 16), vmx));
            const __m512 e2 = exp_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(sr + j + 32), vmx));
            const __m512 e3 = exp_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(sr + j + 48), vmx));
            _mm256_storeu_si256((__m256i *)(pr + j), to_bf16(e0));
            _mm256_storeu_si256((__m256i *)(pr + j + 16), to_bf16(e1));
            _mm256_storeu_si256((__m256i *)(pr + j + 32), to_bf16(e2));
            _mm256_storeu_si256((__m256i *)(pr + j + 48), to_bf16(e3));
            vs = _mm512_add_ps(vs, e0);
            vs1 = _mm512_add_ps(vs1, e1);
            vs2 = _mm512_add_ps(vs2, e2);
            vs3 = _mm512_add_ps(vs3, e3);
        }
        for (; j < full; j += 16) {
            const __m512 e = exp_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(sr + j), vmx));
            _mm256_storeu_si256((__m256i *)(pr + j), to_bf16(e));
            vs = _mm512_add_ps(vs, e);
        }
        if (tail) {
            const __m512 e = _mm512_maskz_mov_ps(tail, exp_nonpositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, sr + full), vmx)));
            _mm256_mask_storeu_epi16(pr + full, tail, to_bf16(e));
            vs = _mm512_add_ps(vs, e);
        }
        vs = _mm512_add_ps(_mm512_add_ps(vs, vs1), _mm512_add_ps(vs2, vs3));
        for (long j = nb; j < width; j++) pr[j] = 0;
        if (correction != 1.0f) {
            const __m512 vc = _mm512_set1_ps(correction);
            float *orow = o + r * ldo;
            for (long c = 0; c < dp; c += 16) _mm512_storeu_ps(orow + c, _mm512_mul_ps(_mm512_loadu_ps(orow + c), vc));
        }
        l[r] = l[r] * correction + _mm512_reduce_add_ps(vs);
        m[r] = mx;
    }
}

int sd3k_attention_run_bf16(const sd3k_attention_t *a, long begin, long end) {
    const long d = a->head_size, nk = a->keys, nq = a->queries;
    const long nkp = sd3k_round_up(nk, 32), dp = sd3k_round_up(d, 16), dh = (d + 1) / 2;
    const long rmax = 64;
    float *s = aligned_alloc(64, sizeof(float) * (size_t)(2 * rmax * ABK + rmax * dp + 2 * rmax));
    uint16_t *qb = aligned_alloc(64, sizeof(uint16_t) * (size_t)(rmax * 2 * dh + rmax * ABK + 32));
    if (!s || !qb) { free(s); free(qb); return -1; }
    float *pf = s + rmax * ABK, *o = pf + rmax * ABK, *m = o + rmax * dp, *l = m + rmax;
    uint16_t *pb = qb + rmax * 2 * dh;
    float *qrowf = pf;  // the scaled query row before rounding (pf is free then)
    const long block = a->block, blocks = (nq + block - 1) / block;  // block ≤ rmax (sd3k_attention_prepare)
    for (long t = begin; t < end; t++) {
        const long unit = t / blocks, q0 = (t % blocks) * block;
        const long b = unit / a->heads, h = unit % a->heads;
        const long rows = nq - q0 < block ? nq - q0 : block, rpad = sd3k_round_up(rows, 8);
        const uint16_t *kb = (const uint16_t *)a->packed + unit * sd3k_unit_halves(d, nk);
        const uint16_t *vb = kb + 2 * dh * nkp;
        const float *qrow = a->q + (b * nq + q0) * a->ldq + h * d;
        memset(qb, 0, sizeof(uint16_t) * (size_t)(rpad * 2 * dh));
        for (long r = 0; r < rows; r++) {
            for (long c = 0; c < d; c++) qrowf[c] = qrow[r * a->ldq + c] * a->scale;
            round_bf16_avx512(qrowf, qb + r * 2 * dh, d);
        }
        memset(o, 0, sizeof(float) * (size_t)(rpad * dp));
        memset(pb, 0, sizeof(uint16_t) * (size_t)(rpad * ABK));
        for (long r = 0; r < rpad; r++) { m[r] = -INFINITY; l[r] = 0; }
        for (long j0 = 0; j0 < nk; j0 += ABK) {
            const long nb = nk - j0 < ABK ? nk - j0 : ABK, ncols = sd3k_round_up(nb, 32), pairs = (nb + 1) / 2;
            for (long r0 = 0; r0 < rpad; r0 += 8)
                for (long c = 0; c < ncols; c += 32) qk_tile_bf16(qb + r0 * 2 * dh, dh, kb + (j0 + c) * 2, nkp, s + r0 * ABK + c, ABK);
            online_softmax_bf16(s, pb, ABK, rows, nb, 2 * pairs, m, l, o, dp, dp);
            const uint16_t *vblock = vb + (j0 / 2) * dp * 2;
            for (long r0 = 0; r0 < rpad; r0 += 4) {
                long c = 0;
                for (; c + 64 <= dp; c += 64) pv_tile_bf16_wide(pb + r0 * ABK, ABK, pairs, vblock + c * 2, dp, o + r0 * dp + c, dp);
                for (; c < dp; c += 16) pv_tile_bf16_one(pb + r0 * ABK, ABK, pairs, vblock + c * 2, dp, o + r0 * dp + c, dp);
            }
        }
        float *orow = a->out + (b * nq + q0) * a->ldo + h * d;
        for (long r = 0; r < rows; r++) {
            const float inv = 1.0f / l[r];
            for (long c = 0; c < d; c++) orow[r * a->ldo + c] = o[r * dp + c] * inv;
        }
        if (a->lse)
            for (long r = 0; r < rows; r++) a->lse[unit * nq + q0 + r] = m[r] + logf(l[r]);
    }
    free(s);
    free(qb);
    return 0;
}


// ---- bf16 attention backward (AVX512_BF16) ----

// C[4 rows][16·NVEC] += Σⱼ A(r, j)·B[j] over pairs j: A(r, j) is the bf16 pair at a[r·ars + j·acs] (32-bit units),
// B the pairs [j][ldb][2]. With (ars, acs) = (1, lds) A is a pair-interleaved transposed block (Pᵀ, dSᵀ).
#define BW_ACC_BF16(NAME, NVEC)                                                                                  \
    static inline void NAME(const uint32_t *a, long ars, long acs, long pairs, const uint16_t *b, long ldb, float *c, long ldc) { \
        __m512 acc[4][NVEC];                                                                                     \
        for (int r = 0; r < 4; r++)                                                                              \
            for (int x = 0; x < NVEC; x++) acc[r][x] = _mm512_loadu_ps(c + r * ldc + x * 16);                    \
        for (long j = 0; j < pairs; j++) {                                                                       \
            __m512i bv[NVEC];                                                                                    \
            for (int x = 0; x < NVEC; x++) bv[x] = _mm512_loadu_si512(b + (j * ldb + x * 16) * 2);               \
            for (int r = 0; r < 4; r++) {                                                                        \
                const __m512i p = _mm512_set1_epi32((int)a[r * ars + j * acs]);                                 \
                for (int x = 0; x < NVEC; x++) acc[r][x] = dot_pairs(acc[r][x], p, bv[x]);                       \
            }                                                                                                    \
        }                                                                                                        \
        for (int r = 0; r < 4; r++)                                                                              \
            for (int x = 0; x < NVEC; x++) _mm512_storeu_ps(c + r * ldc + x * 16, acc[r][x]);                    \
    }
BW_ACC_BF16(bw_acc_bf16_wide, 4)
BW_ACC_BF16(bw_acc_bf16_one, 1)

// C[rows][cols] += A · B (rows a multiple of 4, cols of 16).
static void bw_acc_bf16(const uint32_t *a, long ars, long acs, long pairs, const uint16_t *b, long ldb, float *c, long ldc,
                        long rows, long cols) {
    for (long r0 = 0; r0 < rows; r0 += 4) {
        long x = 0;
        for (; x + 64 <= cols; x += 64) bw_acc_bf16_wide(a + r0 * ars, ars, acs, pairs, b + x * 2, ldb, c + r0 * ldc + x, ldc);
        for (; x < cols; x += 16) bw_acc_bf16_one(a + r0 * ars, ars, acs, pairs, b + x * 2, ldb, c + r0 * ldc + x, ldc);
    }
}

// Two fp32 rows (16 columns each) as 16 bf16 pairs (row0[i], row1[i]): the operand form of a product summing over rows.
static inline __m512i pair_rows_bf16(__m512 row0, __m512 row1) {
    const __m512i order = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                           23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(order, (__m512i)_mm512_cvtne2ps_pbh(row1, row0));
}

// rows (even) fp32 rows of `cols` (a multiple of 16) at stride lds → pairs [rows/2][ldp][2].
static void pair_rows(const float *f, long lds, long rows, long cols, uint16_t *out, long ldp) {
    for (long r = 0; r < rows; r += 2)
        for (long c = 0; c < cols; c += 16)
            _mm512_storeu_si512(out + ((r / 2) * ldp + c) * 2,
                                pair_rows_bf16(_mm512_loadu_ps(f + r * lds + c), _mm512_loadu_ps(f + (r + 1) * lds + c)));
}

// The fp32 backward's steps with bf16 operands. Scores are remade with the bf16 forward's rounding and tile (the
// queries scaled then rounded, keys packed the same way), so P = exp(S − lse) matches the forward's probabilities.
int sd3k_attention_backward_run_bf16(const sd3k_attention_backward_t *a, long begin, long end) {
    const long d = a->head_size, nk = a->keys, nq = a->queries, nkp = sd3k_round_up(nk, 32), dp = sd3k_round_up(d, 16);
    const long dh = (d + 1) / 2, brp = sd3k_round_up(a->block, 8);
    const long nf = 2 * nkp * dp + 2 * brp * ABK + 3 * brp * dp + 2 * brp;
    const long nh = 4 * dh * nkp + nkp * dp + 2 * brp * 2 * dh + 2 * brp * dp + 3 * brp * ABK + 2 * dp + 2;
    float *dk = aligned_alloc(64, sizeof(float) * (size_t)sd3k_round_up(nf, 16));
    uint16_t *kb = aligned_alloc(64, sizeof(uint16_t) * (size_t)sd3k_round_up(nh, 32));
    if (!dk || !kb) { free(dk); free(kb); return -1; }
    float *dv = dk + nkp * dp, *p = dv + nkp * dp, *dps = p + brp * ABK, *dq = dps + brp * ABK, *qrowf = dq + brp * dp;
    float *dorowf = qrowf + brp * dp, *lse = dorowf + brp * dp, *delta = lse + brp;
    uint16_t *vbt = kb + 2 * dh * nkp, *kr = vbt + 2 * dh * nkp, *qb = kr + nkp * dp, *dob = qb + brp * 2 * dh;
    uint16_t *qpair = dob + brp * 2 * dh, *dopair = qpair + brp * dp, *ppair = dopair + brp * dp, *dsb = ppair + brp * ABK;
    uint16_t *dspair = dsb + brp * ABK, *row = dspair + brp * ABK, *next = row + dp + 1;
    for (long unit = begin; unit < end; unit++) {
        const long b = unit / a->heads, h = unit % a->heads;
        const float *kh = a->k + b * nk * a->ldk + h * d, *vh = a->v + b * nk * a->ldk + h * d;
        // Keys and values as pairs along the head dimension ([dh][nkp] pairs, the forward's key layout) for S and dP;
        // keys as pairs along the keys ([nkp/2][dp] pairs, the forward's value layout) for dQ.
        memset(kb, 0, sizeof(uint16_t) * (size_t)(4 * dh * nkp + nkp * dp));
        uint32_t *kp = (uint32_t *)kb, *vp = (uint32_t *)vbt, *krp = (uint32_t *)kr;
        for (long j = 0; j < nk; j++) {
            row[d] = 0;
            round_bf16_avx512(kh + j * a->ldk, row, d);
            for (long q = 0; q < dh; q++) kp[q * nkp + j] = (uint32_t)row[2 * q] | (uint32_t)row[2 * q + 1] << 16;
            round_bf16_avx512(vh + j * a->ldk, row, d);
            for (long q = 0; q < dh; q++) vp[q * nkp + j] = (uint32_t)row[2 * q] | (uint32_t)row[2 * q + 1] << 16;
        }
        for (long j = 0; j < nk; j += 2) {
            round_bf16_avx512(kh + j * a->ldk, row, d);
            if (j + 1 < nk) round_bf16_avx512(kh + (j + 1) * a->ldk, next, d);
            else memset(next, 0, sizeof(uint16_t) * (size_t)d);
            for (long c = 0; c < d; c++) krp[(j / 2) * dp + c] = (uint32_t)row[c] | (uint32_t)next[c] << 16;
        }
        memset(dk, 0, sizeof(float) * (size_t)(2 * nkp * dp));
        for (long q0 = 0; q0 < nq; q0 += a->block) {
            const long rows = nq - q0 < a->block ? nq - q0 : a->block, rpad = sd3k_round_up(rows, 8);
            const long base = (b * nq + q0) * a->ldq + h * d;
            // Scaled queries and dO: rows of bf16 (pairs along d) and fp32 copies for the row pairs.
            memset(qb, 0, sizeof(uint16_t) * (size_t)(2 * brp * 2 * dh));
            memset(dq, 0, sizeof(float) * (size_t)(3 * brp * dp));  // dq, qrowf, dorowf
            for (long r = 0; r < rpad; r++) lse[r] = delta[r] = 0;
            for (long r = 0; r < rows; r++) {
                const float *qr = a->q + base + r * a->ldq, *gr = a->dout + base + r * a->ldq, *orow = a->out + base + r * a->ldq;
                double sum = 0;
                for (long c = 0; c < d; c++) {
                    qrowf[r * dp + c] = qr[c] * a->scale;
                    dorowf[r * dp + c] = gr[c];
                    sum += (double)gr[c] * orow[c];
                }
                round_bf16_avx512(qrowf + r * dp, qb + r * 2 * dh, d);
                round_bf16_avx512(dorowf + r * dp, dob + r * 2 * dh, d);
                delta[r] = (float)sum;
                lse[r] = a->lse[unit * nq + q0 + r];
            }
            pair_rows(qrowf, dp, rpad, dp, qpair, dp);
            pair_rows(dorowf, dp, rpad, dp, dopair, dp);
            for (long j0 = 0; j0 < nk; j0 += ABK) {
                const long nb = nk - j0 < ABK ? nk - j0 : ABK, ncols = sd3k_round_up(nb, 32);
                for (long r0 = 0; r0 < rpad; r0 += 8)
                    for (long c = 0; c < ncols; c += 32) qk_tile_bf16(qb + r0 * 2 * dh, dh, kb + (j0 + c) * 2, nkp, p + r0 * ABK + c, ABK);
                for (long r = 0; r < rpad; r++) {
                    float *pr = p + r * ABK;
                    long j = 0;
                    if (r < rows) {
                        const __m512 vl = _mm512_set1_ps(lse[r]);
                        for (; j + 16 <= nb; j += 16) _mm512_storeu_ps(pr + j, exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(pr + j), vl)));
                        for (; j < nb; j++) pr[j] = sd3k_exp1(pr[j] - lse[r]);
                    }
                    for (; j < ncols; j++) pr[j] = 0;
                }
                // dV += Pᵀ·dO.
                pair_rows(p, ABK, rpad, ncols, ppair, ABK);
                bw_acc_bf16((const uint32_t *)ppair, 1, ABK, rpad / 2, dopair, dp, dv + j0 * dp, dp, ncols, dp);
                // dP = dO·Vᵀ; dS = P∘(dP − δ).
                for (long r0 = 0; r0 < rpad; r0 += 8)
                    for (long c = 0; c < ncols; c += 32) qk_tile_bf16(dob + r0 * 2 * dh, dh, vbt + (j0 + c) * 2, nkp, dps + r0 * ABK + c, ABK);
                for (long r = 0; r < rpad; r++) {
                    float *sr = dps + r * ABK;
                    const float *pr = p + r * ABK;
                    const __m512 vd = _mm512_set1_ps(delta[r]);
                    for (long j = 0; j < ncols; j += 16) {
                        const __m512 ds = _mm512_mul_ps(_mm512_loadu_ps(pr + j), _mm512_sub_ps(_mm512_loadu_ps(sr + j), vd));
                        _mm512_storeu_ps(sr + j, ds);
                        _mm256_storeu_si256((__m256i *)(dsb + r * ABK + j), to_bf16(ds));
                    }
                }
                // dQ += dS·K (scaled on the way out); dK += dSᵀ·(scale·Q).
                bw_acc_bf16((const uint32_t *)dsb, ABK / 2, 1, ncols / 2, kr + (j0 / 2) * dp * 2, dp, dq, dp, rpad, dp);
                pair_rows(dps, ABK, rpad, ncols, dspair, ABK);
                bw_acc_bf16((const uint32_t *)dspair, 1, ABK, rpad / 2, qpair, dp, dk + j0 * dp, dp, ncols, dp);
            }
            sd3k_attention_backward_store_dq(a, base, rows, d, dq, dp);
        }
        sd3k_attention_backward_store_dkdv(a, b, h, nk, d, dk, dv, dp);
    }
    free(dk);
    free(kb);
    return 0;
}

#pragma clang attribute pop
#else
const sd3k_table sd3k_avx512_table = {0};
int sd3k_attention_run_bf16(const sd3k_attention_t *a, long begin, long end) { (void)a; (void)begin; (void)end; return -1; }
int sd3k_attention_backward_run_bf16(const sd3k_attention_backward_t *a, long begin, long end) {
    (void)a; (void)begin; (void)end;
    return -1;
}
#endif
