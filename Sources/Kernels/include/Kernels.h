// Hot loops of the engine in C, built for several instruction sets in one binary and chosen at start-up
// (dispatch.c): AVX-512 (with bf16 dot products where the CPU has them), AVX2 + FMA, or portable C.
// Every function works on one thread; the Swift side splits the work across the OpenMP threads.
#ifndef SD3_KERNELS_H
#define SD3_KERNELS_H

#include <stdint.h>

/// Instruction-set levels, lowest first.
enum {
    SD3K_ISA_BASELINE = 0,    // x86-64 baseline (SSE2) or another architecture: portable C
    SD3K_ISA_AVX2 = 1,        // AVX2 + FMA
    SD3K_ISA_AVX512 = 2,      // AVX-512 F/BW/DQ/VL
    SD3K_ISA_AVX512_BF16 = 3, // AVX-512 with vdpbf16ps
};

/// The level the CPU supports (cpuid and the OS's saved vector state).
int sd3k_cpu_isa(void);
/// The level in use: the CPU's, capped by the environment variable SD3_MAX_ISA (baseline, avx2, avx512,
/// avx512_bf16) read at start-up, or by `sd3k_set_isa`.
int sd3k_isa(void);
/// Selects `level` (capped at the CPU's) and returns the level in effect. For tests and benchmarks.
int sd3k_set_isa(int level);
/// The same for the calling thread only (other threads keep the process's level); a negative level goes back to the
/// process's. `sd3k_isa` reports the calling thread's level; an attention job keeps the level it was prepared with.
int sd3k_set_thread_isa(int level);
/// "AVX-512 with bf16", "AVX-512", "AVX2", "baseline".
const char *sd3k_isa_name(int level);
/// The SD3_MAX_ISA value that was not understood, or NULL.
const char *sd3k_isa_override_error(void);

/// out[i] = exp(in[i] − max) / Σ exp(in[j] − max); a row of −inf gives NaN (as torch).
void sd3k_softmax_row(const float *in, float *out, long n);
/// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) written as x·sigmoid(2u) (the same function).
void sd3k_gelu_tanh(const float *in, float *out, long n);
/// x·sigmoid(x) (SiLU) and x·sigmoid(1.702·x) (quick GELU): out[i] = in[i] / (1 + exp(−k·in[i])).
void sd3k_sigmoid_mul(const float *in, float *out, long n, float k);
/// (x − mean)/√(var + eps), then ·weight + bias where given; mean and var over the n values.
void sd3k_layer_norm_row(const float *in, float *out, long n, float eps, const float *weight, const float *bias);
/// LayerNorm without affine parameters then ·(1 + scale) + shift (diffusers AdaLayerNorm).
void sd3k_norm_modulate_row(const float *in, float *out, long n, float eps, const float *shift, const float *scale);
/// x/√(mean(x²) + eps)·weight (weight may be NULL).
void sd3k_rms_norm_row(const float *in, float *out, long n, float eps, const float *weight);
/// out = x·(1 + scale) + shift.
void sd3k_modulate_row(const float *in, float *out, long n, const float *shift, const float *scale);
/// out = x + gate·y.
void sd3k_gated_add_row(const float *x, const float *y, const float *gate, float *out, long n);
/// bf16 bit patterns, round to nearest even (NaN stays a quiet NaN), as torch's `.to(torch.bfloat16)`.
void sd3k_round_bf16(const float *in, uint16_t *out, long n);
void sd3k_widen_bf16(const uint16_t *in, float *out, long n);
/// exp with the kernels' algorithm (within about 2 ulp of expf; below −87.33 gives 0, above 88.72 +inf).
void sd3k_exp(const float *in, float *out, long n);

/// Backward ops for training. dy·GELU'(x) of the tanh form (sd3k_gelu_tanh's derivative).
void sd3k_gelu_tanh_grad(const float *x, const float *dy, float *out, long n);
/// One row of LayerNorm's input gradient (no affine): with g = dy·gain (gain NULL: 1), x̂ = (x − μ)/σ,
/// σ = √(var + eps), out = (g − mean(g) − x̂·mean(g·x̂))/σ. Writes the row's μ and 1/σ (as sd3k_layer_norm_row's).
void sd3k_layer_norm_grad_row(const float *x, const float *dy, const float *gain, float *out, long n, float eps, float *mean,
                              float *inverse);

/// With `keep` set, freed heap memory stays in the process for reuse (no mmap for large blocks, no trimming);
/// cleared, glibc's defaults come back and the free memory is returned to the kernel.
void sd3k_keep_freed_memory(int keep);

/// Flash-style attention (no N×N matrix): q [B, Nq, ldq], k and v [B, Nk, ldk/ldv], out [B, Nq, ldo];
/// head h uses columns h·d ..< (h+1)·d of each row. Scores are made a block of queries × a block of keys at a
/// time with a running maximum and sum. With `bf16` (needs SD3K_ISA_AVX512_BF16) both products take bf16
/// operands (rounded to nearest even) with fp32 accumulation, as torch's bf16 attention.
typedef struct {
    const float *q, *k, *v;
    float *out;
    long batch, queries, keys, heads, head_size;
    long ldq, ldk, ldv, ldo;
    float scale;
    int bf16;
    int level;     // set by sd3k_attention_prepare: the instruction set every later call uses
    void *packed;  // sd3k_attention_packed_bytes() bytes, 64-byte aligned, written by sd3k_attention_pack
    float *lse;    // NULL, or [B, H, Nq]: each query row's logsumexp of its scaled scores (for the backward)
    long block;    // queries per task; 0 (or more than the kernel's own) gives the kernel's own, set by prepare
} sd3k_attention_t;

/// Fixes the instruction set for this job (the level in use now) and clears `bf16` where the CPU cannot
/// multiply bf16; call it once before the others.
void sd3k_attention_prepare(sd3k_attention_t *a);
long sd3k_attention_packed_bytes(const sd3k_attention_t *a);
/// Packs keys and values of (batch·heads) units [begin, end) into `packed`; returns 0, or −1 without memory.
int sd3k_attention_pack(const sd3k_attention_t *a, long begin, long end);
/// Number of independent tasks (a block of queries of one head); run them in any order on any threads.
long sd3k_attention_tasks(const sd3k_attention_t *a);
/// Runs tasks [begin, end); returns 0, or −1 when scratch memory could not be allocated.
int sd3k_attention_run(const sd3k_attention_t *a, long begin, long end);

/// The backward of that attention (the FlashAttention-2 backward, no N×N matrix): from dO and the forward's output
/// and logsumexp, dq, dk, dv (same layouts as q, k, v; every column of a head written). Per (batch, head) unit, a
/// block of `block` queries against a block of keys at a time: P = exp(scale·Q·Kᵀ − lse), dV += Pᵀ·dO,
/// dP = dO·Vᵀ, dS = P∘(dP − rowsum(dO∘O)), dQ += scale·dS·K, dK += scale·dSᵀ·Q. With `bf16` (needs
/// SD3K_ISA_AVX512_BF16) the five products take bf16 operands with fp32 accumulation.
typedef struct {
    const float *q, *k, *v, *out, *dout, *lse;
    float *dq, *dk, *dv;
    long batch, queries, keys, heads, head_size;
    long ldq;  // row stride of q, out, dout and dq
    long ldk;  // row stride of k, v, dk and dv
    float scale;
    int bf16;
    int level;   // set by sd3k_attention_backward_prepare
    long block;  // queries per block (1…256; 0 gives 64), set by prepare
} sd3k_attention_backward_t;

void sd3k_attention_backward_prepare(sd3k_attention_backward_t *a);
/// Runs (batch, head) units [begin, end) of batch·heads; each writes only its head's columns. Returns 0, or −1
/// when scratch memory could not be allocated.
int sd3k_attention_backward_run(const sd3k_attention_backward_t *a, long begin, long end);

#endif
