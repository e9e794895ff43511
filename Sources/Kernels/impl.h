// The kernels, written once over a vector abstraction and compiled per instruction set: the including file
// defines VW (lanes), vf and the V* operations, v_exp, RB/RB2/NV/QROWS (tile sizes) and K(name) (suffix).
// Included by kernels_baseline.c, kernels_avx2.c and kernels_avx512.c only.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

static void K(exp_all)(const float *in, float *out, long n) {
    long i = 0;
    for (; i + VW <= n; i += VW) VSTORE(out + i, v_exp(VLOAD(in + i)));
    for (; i < n; i++) out[i] = sd3k_exp1(in[i]);
}

static void K(softmax_row)(const float *in, float *out, long n) {
    long i = 0;
    float m = -INFINITY;
    if (n >= VW) {
        vf vm = VLOAD(in);
        for (i = VW; i + VW <= n; i += VW) vm = VMAX(vm, VLOAD(in + i));
        m = VHMAX(vm);
    } else i = 0;
    for (; i < n; i++) m = in[i] > m ? in[i] : m;
    const vf vmax = VSET1(m);
    vf vs = VZERO();
    for (i = 0; i + VW <= n; i += VW) {
        vf e = v_exp(VSUB(VLOAD(in + i), vmax));
        VSTORE(out + i, e);
        vs = VADD(vs, e);
    }
    float s = VHSUM(vs);
    for (; i < n; i++) { out[i] = sd3k_exp1(in[i] - m); s += out[i]; }
    const vf inv = VSET1(1.0f / s);
    for (i = 0; i + VW <= n; i += VW) VSTORE(out + i, VMUL(VLOAD(out + i), inv));
    for (; i < n; i++) out[i] *= 1.0f / s;
}

// torch's formula 0.5·x·(1 + tanh(u)), tanh(u) = sign(u)·(1 − e)/(1 + e) with e = exp(−2|u|).
static inline vf K(gelu_v)(vf x) {
    const vf u = VMUL(VSET1(0.79788456080286536f), VFMA(VMUL(VSET1(0.044715f), VMUL(x, x)), x, x));
    const vf e = v_exp(VMUL(VSET1(-2.0f), VABS(u)));
    const vf t = VCOPYSIGN(VDIV(VSUB(VSET1(1.0f), e), VADD(VSET1(1.0f), e)), u);
    return VMUL(VMUL(VSET1(0.5f), x), VADD(VSET1(1.0f), t));
}

static void K(gelu_tanh)(const float *in, float *out, long n) {
    long i = 0;
    for (; i + VW <= n; i += VW) VSTORE(out + i, K(gelu_v)(VLOAD(in + i)));
    for (; i < n; i++) out[i] = sd3k_gelu1(in[i]);
}

static void K(sigmoid_mul)(const float *in, float *out, long n, float k) {
    long i = 0;
    const vf vk = VSET1(-k), one = VSET1(1.0f);
    for (; i + VW <= n; i += VW) {
        vf x = VLOAD(in + i);
        VSTORE(out + i, VDIV(x, VADD(one, v_exp(VMUL(vk, x)))));
    }
    for (; i < n; i++) out[i] = in[i] / (1.0f + sd3k_exp1(-k * in[i]));
}

// Mean and 1/√(var + eps) in two passes (centred squares), lanes summed in double.
static void K(moments)(const float *in, long n, float eps, float *mean, float *inverse) {
    long i = 0;
    vf vs = VZERO();
    for (; i + VW <= n; i += VW) vs = VADD(vs, VLOAD(in + i));
    double s = VHSUMD(vs);
    for (; i < n; i++) s += in[i];
    const float m = (float)(s / (double)n);
    const vf vm = VSET1(m);
    vf vq = VZERO();
    for (i = 0; i + VW <= n; i += VW) { vf c = VSUB(VLOAD(in + i), vm); vq = VFMA(c, c, vq); }
    double q = VHSUMD(vq);
    for (; i < n; i++) { double c = (double)in[i] - m; q += c * c; }
    *mean = m;
    *inverse = (float)(1.0 / sqrt(q / (double)n + (double)eps));
}

static void K(layer_norm_row)(const float *in, float *out, long n, float eps, const float *weight, const float *bias) {
    float m, inv;
    K(moments)(in, n, eps, &m, &inv);
    const vf vm = VSET1(m), vi = VSET1(inv);
    long i = 0;
    for (; i + VW <= n; i += VW) {
        vf y = VMUL(VSUB(VLOAD(in + i), vm), vi);
        if (weight) y = VMUL(y, VLOAD(weight + i));
        if (bias) y = VADD(y, VLOAD(bias + i));
        VSTORE(out + i, y);
    }
    for (; i < n; i++) {
        float y = (in[i] - m) * inv;
        if (weight) y *= weight[i];
        if (bias) y += bias[i];
        out[i] = y;
    }
}

static void K(norm_modulate_row)(const float *in, float *out, long n, float eps, const float *shift, const float *scale) {
    float m, inv;
    K(moments)(in, n, eps, &m, &inv);
    const vf vm = VSET1(m), vi = VSET1(inv), one = VSET1(1.0f);
    long i = 0;
    for (; i + VW <= n; i += VW) {
        vf y = VMUL(VSUB(VLOAD(in + i), vm), vi);
        VSTORE(out + i, VADD(VMUL(y, VADD(one, VLOAD(scale + i))), VLOAD(shift + i)));
    }
    for (; i < n; i++) out[i] = (in[i] - m) * inv * (1 + scale[i]) + shift[i];
}

static void K(rms_norm_row)(const float *in, float *out, long n, float eps, const float *weight) {
    long i = 0;
    vf vq = VZERO();
    for (; i + VW <= n; i += VW) { vf x = VLOAD(in + i); vq = VFMA(x, x, vq); }
    double q = VHSUMD(vq);
    for (; i < n; i++) q += (double)in[i] * in[i];
    const float inv = (float)(1.0 / sqrt(q / (double)n + (double)eps));
    const vf vi = VSET1(inv);
    for (i = 0; i + VW <= n; i += VW) {
        vf y = VMUL(VLOAD(in + i), vi);
        VSTORE(out + i, weight ? VMUL(y, VLOAD(weight + i)) : y);
    }
    for (; i < n; i++) out[i] = weight ? in[i] * inv * weight[i] : in[i] * inv;
}

static void K(modulate_row)(const float *in, float *out, long n, const float *shift, const float *scale) {
    long i = 0;
    const vf one = VSET1(1.0f);
    for (; i + VW <= n; i += VW)
        VSTORE(out + i, VADD(VMUL(VLOAD(in + i), VADD(one, VLOAD(scale + i))), VLOAD(shift + i)));
    for (; i < n; i++) out[i] = in[i] * (1 + scale[i]) + shift[i];
}

static void K(gated_add_row)(const float *x, const float *y, const float *gate, float *out, long n) {
    long i = 0;
    for (; i + VW <= n; i += VW) VSTORE(out + i, VADD(VLOAD(x + i), VMUL(VLOAD(gate + i), VLOAD(y + i))));
    for (; i < n; i++) out[i] = x[i] + gate[i] * y[i];
}

// dy·GELU'(x), tanh form: t = tanh(u) from e = exp(−2|u|) as in gelu_v, 1 − t² = 4e/(1 + e)² (no cancellation),
// GELU'(x) = (1 + t)/2 + x/2·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²).
static void K(gelu_tanh_grad)(const float *x, const float *dy, float *out, long n) {
    const vf c = VSET1(0.79788456080286536f), a = VSET1(0.044715f), a3 = VSET1(3 * 0.044715f), one = VSET1(1.0f), half = VSET1(0.5f);
    long i = 0;
    for (; i + VW <= n; i += VW) {
        const vf v = VLOAD(x + i), v2 = VMUL(v, v);
        const vf u = VMUL(c, VFMA(VMUL(a, v2), v, v));
        const vf e = v_exp(VMUL(VSET1(-2.0f), VABS(u)));
        const vf q = VDIV(one, VADD(one, e));
        const vf t = VCOPYSIGN(VMUL(VSUB(one, e), q), u);
        const vf sech2 = VMUL(VMUL(VSET1(4.0f), e), VMUL(q, q));
        const vf inner = VMUL(VMUL(c, sech2), VFMA(a3, v2, one));
        const vf grad = VMUL(half, VFMA(v, inner, VADD(one, t)));
        VSTORE(out + i, VMUL(VLOAD(dy + i), grad));
    }
    for (; i < n; i++) {
        const float v = x[i], u = 0.79788456080286536f * (v + 0.044715f * v * v * v);
        const float e = sd3k_exp1(-2.0f * fabsf(u)), q = 1.0f / (1.0f + e);
        const float t = copysignf((1.0f - e) * q, u), sech2 = 4.0f * e * q * q;
        out[i] = dy[i] * 0.5f * (1.0f + t + v * 0.79788456080286536f * sech2 * (1.0f + 3 * 0.044715f * v * v));
    }
}

// One row of LayerNorm's input gradient (no affine; `gain` multiplies dy first where given: the affine weight, or
// 1 + scale of a modulation): g = dy·gain, x̂ = (x − μ)/σ, dx = (g − mean(g) − x̂·mean(g·x̂))/σ. Writes μ and 1/σ.
static void K(layer_norm_grad_row)(const float *x, const float *dy, const float *gain, float *out, long n, float eps,
                                   float *mean, float *inverse) {
    float m, inv;
    K(moments)(x, n, eps, &m, &inv);
    const vf vm = VSET1(m), vi = VSET1(inv);
    vf sg = VZERO(), sgx = VZERO();
    long i = 0;
    for (; i + VW <= n; i += VW) {
        const vf g = gain ? VMUL(VLOAD(dy + i), VLOAD(gain + i)) : VLOAD(dy + i);
        sg = VADD(sg, g);
        sgx = VFMA(g, VMUL(VSUB(VLOAD(x + i), vm), vi), sgx);
    }
    double gs = VHSUMD(sg), gxs = VHSUMD(sgx);
    for (; i < n; i++) {
        const float g = gain ? dy[i] * gain[i] : dy[i];
        gs += g;
        gxs += (double)g * ((x[i] - m) * inv);
    }
    const float gMean = (float)(gs / (double)n), gxMean = (float)(gxs / (double)n);
    const vf vg = VSET1(gMean), vgx = VSET1(gxMean);
    for (i = 0; i + VW <= n; i += VW) {
        const vf g = gain ? VMUL(VLOAD(dy + i), VLOAD(gain + i)) : VLOAD(dy + i);
        const vf xh = VMUL(VSUB(VLOAD(x + i), vm), vi);
        VSTORE(out + i, VMUL(VSUB(VSUB(g, vg), VMUL(xh, vgx)), vi));
    }
    for (; i < n; i++) {
        const float g = gain ? dy[i] * gain[i] : dy[i];
        out[i] = (g - gMean - (x[i] - m) * inv * gxMean) * inv;
    }
    *mean = m;
    *inverse = inv;
}

// ---- Attention: fp32 tiles ----

// S[RB rows][2·VW keys] = Qs[RB rows][d] · KT[d][keys] (KT row stride ldk).
static inline void K(qk_tile)(const float *qs, long d, const float *kt, long ldk, float *s, long lds) {
    vf acc[RB][2];
    for (int r = 0; r < RB; r++) { acc[r][0] = VZERO(); acc[r][1] = VZERO(); }
    for (long p = 0; p < d; p++) {
        const vf k0 = VLOAD(kt + p * ldk), k1 = VLOAD(kt + p * ldk + VW);
        for (int r = 0; r < RB; r++) {
            const vf qb = VSET1(qs[r * d + p]);
            acc[r][0] = VFMA(qb, k0, acc[r][0]);
            acc[r][1] = VFMA(qb, k1, acc[r][1]);
        }
    }
    for (int r = 0; r < RB; r++) { VSTORE(s + r * lds, acc[r][0]); VSTORE(s + r * lds + VW, acc[r][1]); }
}

// O[RB2 rows][nv·VW] += P[RB2 rows][nb] · V[nb][nv·VW] (V row stride ldv); nv is NV or 1.
#define PV_TILE(NAME, NVEC)                                                                              \
    static inline void NAME(const float *p, long ldp, long nb, const float *v, long ldv, float *o, long ldo) { \
        vf acc[RB2][NVEC];                                                                               \
        for (int r = 0; r < RB2; r++)                                                                    \
            for (int x = 0; x < NVEC; x++) acc[r][x] = VLOAD(o + r * ldo + x * VW);                       \
        for (long j = 0; j < nb; j++) {                                                                  \
            vf vv[NVEC];                                                                                 \
            for (int x = 0; x < NVEC; x++) vv[x] = VLOAD(v + j * ldv + x * VW);                           \
            for (int r = 0; r < RB2; r++) {                                                              \
                const vf pb = VSET1(p[r * ldp + j]);                                                     \
                for (int x = 0; x < NVEC; x++) acc[r][x] = VFMA(pb, vv[x], acc[r][x]);                   \
            }                                                                                            \
        }                                                                                                \
        for (int r = 0; r < RB2; r++)                                                                    \
            for (int x = 0; x < NVEC; x++) VSTORE(o + r * ldo + x * VW, acc[r][x]);                       \
    }
PV_TILE(K(pv_tile_wide), NV)
PV_TILE(K(pv_tile_one), 1)

// Running softmax over one block of keys for `rows` real rows: S → P (exp(S − m)), m and l updated, O rescaled.
// P columns [nb, width) are zero so the value product may read them.
static void K(online_softmax)(float *s, float *pf, long lds, long rows, long nb, long width, float *m, float *l,
                              float *o, long ldo, long dp) {
    for (long r = 0; r < rows; r++) {
        const float *sr = s + r * lds;
        float *pr = pf + r * lds;
        float mx = m[r];
        long j = 0;
        if (nb >= VW) {
            vf vm = VLOAD(sr);
            for (j = VW; j + VW <= nb; j += VW) vm = VMAX(vm, VLOAD(sr + j));
            const float bm = VHMAX(vm);
            mx = bm > mx ? bm : mx;
        } else j = 0;
        for (; j < nb; j++) mx = sr[j] > mx ? sr[j] : mx;
        const float correction = sd3k_exp1(m[r] - mx);  // exp(−inf) = 0 on the first block
        const vf vmx = VSET1(mx);
        vf vs = VZERO();
        for (j = 0; j + VW <= nb; j += VW) {
            const vf e = v_exp(VSUB(VLOAD(sr + j), vmx));
            VSTORE(pr + j, e);
            vs = VADD(vs, e);
        }
        float sum = VHSUM(vs);
        for (; j < nb; j++) { pr[j] = sd3k_exp1(sr[j] - mx); sum += pr[j]; }
        for (; j < width; j++) pr[j] = 0;
        if (correction != 1.0f) {
            const vf vc = VSET1(correction);
            float *orow = o + r * ldo;
            for (long c = 0; c < dp; c += VW) VSTORE(orow + c, VMUL(VLOAD(orow + c), vc));
        }
        l[r] = l[r] * correction + sum;
        m[r] = mx;
    }
}

// One task: QROWS queries of one head against all keys.
static int K(attention_run)(const sd3k_attention_t *a, long begin, long end) {
    const long d = a->head_size, nk = a->keys, nq = a->queries;
    const long nkp = sd3k_round_up(nk, 32), dp = sd3k_round_up(d, 16);
    const long rpad_max = sd3k_round_up(QROWS, RLCM);
    float *qs = aligned_alloc(64, sizeof(float) * (size_t)(rpad_max * dp + 2 * rpad_max * ABK + rpad_max * dp + 2 * rpad_max));
    if (!qs) return -1;
    float *s = qs + rpad_max * dp, *pf = s + rpad_max * ABK, *o = pf + rpad_max * ABK, *m = o + rpad_max * dp, *l = m + rpad_max;
    const long block = a->block, blocks = (nq + block - 1) / block;  // block ≤ QROWS (sd3k_attention_prepare)
    for (long t = begin; t < end; t++) {
        const long unit = t / blocks, q0 = (t % blocks) * block;
        const long b = unit / a->heads, h = unit % a->heads;
        const long rows = nq - q0 < block ? nq - q0 : block, rpad = sd3k_round_up(rows, RLCM);
        const float *kt = (const float *)a->packed + unit * sd3k_unit_floats(d, nk);
        const float *vp = kt + d * nkp;
        const float *qrow = a->q + (b * nq + q0) * a->ldq + h * d;
        memset(qs, 0, sizeof(float) * (size_t)(rpad * d));
        for (long r = 0; r < rows; r++)
            for (long c = 0; c < d; c++) qs[r * d + c] = qrow[r * a->ldq + c] * a->scale;
        memset(o, 0, sizeof(float) * (size_t)(rpad * dp));
        memset(pf, 0, sizeof(float) * (size_t)(rpad * ABK));
        for (long r = 0; r < rpad; r++) { m[r] = -INFINITY; l[r] = 0; }
        for (long j0 = 0; j0 < nk; j0 += ABK) {
            const long nb = nk - j0 < ABK ? nk - j0 : ABK, ncols = sd3k_round_up(nb, 2 * VW);
            for (long r0 = 0; r0 < rpad; r0 += RB)
                for (long c = 0; c < ncols; c += 2 * VW) K(qk_tile)(qs + r0 * d, d, kt + j0 + c, nkp, s + r0 * ABK + c, ABK);
            K(online_softmax)(s, pf, ABK, rows, nb, nb, m, l, o, dp, dp);
            for (long r0 = 0; r0 < rpad; r0 += RB2) {
                long c = 0;
                for (; c + NV * VW <= dp; c += NV * VW) K(pv_tile_wide)(pf + r0 * ABK, ABK, nb, vp + j0 * dp + c, dp, o + r0 * dp + c, dp);
                for (; c < dp; c += VW) K(pv_tile_one)(pf + r0 * ABK, ABK, nb, vp + j0 * dp + c, dp, o + r0 * dp + c, dp);
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
    free(qs);
    return 0;
}

// ---- Attention backward: fp32 tiles (sd3k_attention_backward_t) ----

// C[RB rows][2·VW] = A[RB rows][n] (row stride lda) · BT[n][2·VW] (row stride ldb): the forward's qk_tile with the
// rows' stride apart from their length, for S = Qs·Kᵀ and dP = dO·Vᵀ against transposed keys and values.
static inline void K(bw_tile_t)(const float *a, long lda, long n, const float *bt, long ldb, float *c, long ldc) {
    vf acc[RB][2];
    for (int r = 0; r < RB; r++) { acc[r][0] = VZERO(); acc[r][1] = VZERO(); }
    for (long p = 0; p < n; p++) {
        const vf b0 = VLOAD(bt + p * ldb), b1 = VLOAD(bt + p * ldb + VW);
        for (int r = 0; r < RB; r++) {
            const vf ab = VSET1(a[r * lda + p]);
            acc[r][0] = VFMA(ab, b0, acc[r][0]);
            acc[r][1] = VFMA(ab, b1, acc[r][1]);
        }
    }
    for (int r = 0; r < RB; r++) { VSTORE(c + r * ldc, acc[r][0]); VSTORE(c + r * ldc + VW, acc[r][1]); }
}

// C[RB2 rows][NVEC·VW] += Σⱼ A(r, j)·B[j][..], A(r, j) = a[r·ars + j·acs]: with (ars, acs) = (1, lds) A is a
// transposed block (Pᵀ, dSᵀ), so no transpose is ever written.
#define BW_ACC_TILE(NAME, NVEC)                                                                                  \
    static inline void NAME(const float *a, long ars, long acs, long n, const float *b, long ldb, float *c, long ldc) { \
        vf acc[RB2][NVEC];                                                                                       \
        for (int r = 0; r < RB2; r++)                                                                            \
            for (int x = 0; x < NVEC; x++) acc[r][x] = VLOAD(c + r * ldc + x * VW);                               \
        for (long j = 0; j < n; j++) {                                                                           \
            vf bv[NVEC];                                                                                         \
            for (int x = 0; x < NVEC; x++) bv[x] = VLOAD(b + j * ldb + x * VW);                                   \
            for (int r = 0; r < RB2; r++) {                                                                      \
                const vf ab = VSET1(a[r * ars + j * acs]);                                                       \
                for (int x = 0; x < NVEC; x++) acc[r][x] = VFMA(ab, bv[x], acc[r][x]);                           \
            }                                                                                                    \
        }                                                                                                        \
        for (int r = 0; r < RB2; r++)                                                                            \
            for (int x = 0; x < NVEC; x++) VSTORE(c + r * ldc + x * VW, acc[r][x]);                               \
    }
BW_ACC_TILE(K(bw_acc_wide), NV)
BW_ACC_TILE(K(bw_acc_one), 1)

// C[rows][cols] += A · B for rows a multiple of RB2 and cols a multiple of VW.
static void K(bw_acc)(const float *a, long ars, long acs, long n, const float *b, long ldb, float *c, long ldc, long rows, long cols) {
    for (long r0 = 0; r0 < rows; r0 += RB2) {
        long x = 0;
        for (; x + NV * VW <= cols; x += NV * VW) K(bw_acc_wide)(a + r0 * ars, ars, acs, n, b + x, ldb, c + r0 * ldc + x, ldc);
        for (; x < cols; x += VW) K(bw_acc_one)(a + r0 * ars, ars, acs, n, b + x, ldb, c + r0 * ldc + x, ldc);
    }
}

// C[rows][cols] = A · BT for rows a multiple of RB and cols a multiple of 2·VW.
static void K(bw_product_t)(const float *a, long lda, long n, const float *bt, long ldb, float *c, long ldc, long rows, long cols) {
    for (long r0 = 0; r0 < rows; r0 += RB)
        for (long x = 0; x < cols; x += 2 * VW) K(bw_tile_t)(a + r0 * lda, lda, n, bt + x, ldb, c + r0 * ldc + x, ldc);
}

// One (batch, head) unit per iteration: keys and values packed once (Kᵀ and Vᵀ [d][nkp], K [nkp][dp]), dK and dV
// summed over the query blocks in scratch, dQ over the key blocks. Scores use the forward's scaled queries and tile
// order, so S (and P = exp(S − lse)) is the forward's bit for bit.
static int K(attention_backward_run)(const sd3k_attention_backward_t *a, long begin, long end) {
    const long d = a->head_size, nk = a->keys, nq = a->queries, nkp = sd3k_round_up(nk, 32), dp = sd3k_round_up(d, 16);
    const long brp = sd3k_round_up(a->block, RLCM);
    const size_t floats = (size_t)(2 * d * nkp + 3 * nkp * dp + 3 * brp * dp + 2 * brp * ABK + 2 * brp);
    float *kt = aligned_alloc(64, sizeof(float) * sd3k_round_up((long)floats, 16));
    if (!kt) return -1;
    float *vt = kt + d * nkp, *krow = vt + d * nkp, *dk = krow + nkp * dp, *dv = dk + nkp * dp;
    float *qs = dv + nkp * dp, *dos = qs + brp * dp, *dq = dos + brp * dp, *p = dq + brp * dp, *ds = p + brp * ABK;
    float *lse = ds + brp * ABK, *delta = lse + brp;
    for (long unit = begin; unit < end; unit++) {
        const long b = unit / a->heads, h = unit % a->heads;
        const float *kh = a->k + b * nk * a->ldk + h * d, *vh = a->v + b * nk * a->ldk + h * d;
        memset(kt, 0, sizeof(float) * (size_t)(2 * d * nkp + 3 * nkp * dp));
        for (long j = 0; j < nk; j++)
            for (long c = 0; c < d; c++) {
                kt[c * nkp + j] = kh[j * a->ldk + c];
                vt[c * nkp + j] = vh[j * a->ldk + c];
                krow[j * dp + c] = kh[j * a->ldk + c];
            }
        for (long q0 = 0; q0 < nq; q0 += a->block) {
            const long rows = nq - q0 < a->block ? nq - q0 : a->block, rpad = sd3k_round_up(rows, RLCM);
            const long base = (b * nq + q0) * a->ldq + h * d;
            memset(qs, 0, sizeof(float) * (size_t)(3 * brp * dp));
            for (long r = 0; r < rpad; r++) lse[r] = delta[r] = 0;
            for (long r = 0; r < rows; r++) {
                const float *qr = a->q + base + r * a->ldq, *gr = a->dout + base + r * a->ldq, *orow = a->out + base + r * a->ldq;
                double sum = 0;
                for (long c = 0; c < d; c++) {
                    qs[r * dp + c] = qr[c] * a->scale;
                    dos[r * dp + c] = gr[c];
                    sum += (double)gr[c] * orow[c];
                }
                delta[r] = (float)sum;
                lse[r] = a->lse[unit * nq + q0 + r];
            }
            for (long j0 = 0; j0 < nk; j0 += ABK) {
                const long nb = nk - j0 < ABK ? nk - j0 : ABK, ncols = sd3k_round_up(nb, 32);
                // P = exp(S − lse) on real rows and keys, zero elsewhere (so padding adds nothing to dV and dK).
                K(bw_product_t)(qs, dp, d, kt + j0, nkp, p, ABK, rpad, ncols);
                for (long r = 0; r < rpad; r++) {
                    float *pr = p + r * ABK;
                    long j = 0;
                    if (r < rows) {
                        const vf vl = VSET1(lse[r]);
                        for (; j + VW <= nb; j += VW) VSTORE(pr + j, v_exp(VSUB(VLOAD(pr + j), vl)));
                        for (; j < nb; j++) pr[j] = sd3k_exp1(pr[j] - lse[r]);
                    }
                    for (; j < ncols; j++) pr[j] = 0;
                }
                // dV += Pᵀ·dO.
                K(bw_acc)(p, 1, ABK, rpad, dos, dp, dv + j0 * dp, dp, ncols, dp);
                // dP = dO·Vᵀ, then dS = P∘(dP − δ) in place.
                K(bw_product_t)(dos, dp, d, vt + j0, nkp, ds, ABK, rpad, ncols);
                for (long r = 0; r < rpad; r++) {
                    float *sr = ds + r * ABK;
                    const float *pr = p + r * ABK;
                    const vf vd = VSET1(delta[r]);
                    for (long j = 0; j < ncols; j += VW) VSTORE(sr + j, VMUL(VLOAD(pr + j), VSUB(VLOAD(sr + j), vd)));
                }
                // dQ += dS·K (scaled on the way out); dK += dSᵀ·(scale·Q).
                K(bw_acc)(ds, ABK, 1, ncols, krow + j0 * dp, dp, dq, dp, rpad, dp);
                K(bw_acc)(ds, 1, ABK, rpad, qs, dp, dk + j0 * dp, dp, ncols, dp);
            }
            sd3k_attention_backward_store_dq(a, base, rows, d, dq, dp);
        }
        sd3k_attention_backward_store_dkdv(a, b, h, nk, d, dk, dv, dp);
    }
    free(kt);
    return 0;
}
