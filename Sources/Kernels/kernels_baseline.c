// Portable C for CPUs without AVX2 (and for other architectures): one lane per "vector".
#include "internal.h"

typedef float vf;
#define VW 1
#define VLOAD(p) (*(p))
#define VSTORE(p, v) (*(p) = (v))
#define VSET1(x) (x)
#define VZERO() 0.0f
#define VADD(a, b) ((a) + (b))
#define VSUB(a, b) ((a) - (b))
#define VMUL(a, b) ((a) * (b))
#define VDIV(a, b) ((a) / (b))
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VMAX(a, b) ((a) > (b) ? (a) : (b))
#define VABS(a) fabsf(a)
#define VCOPYSIGN(a, b) copysignf(a, b)
#define VHMAX(v) (v)
#define VHSUM(v) (v)
#define VHSUMD(v) ((double)(v))
#define v_exp sd3k_exp1
#define RB 4
#define RB2 4
#define NV 4
#define RLCM 4
#define QROWS 64
#define K(name) name##_baseline
#include "impl.h"

static void round_bf16_baseline(const float *in, uint16_t *out, long n) {
    for (long i = 0; i < n; i++) out[i] = sd3k_bf16_1(in[i]);
}

static void widen_bf16_baseline(const uint16_t *in, float *out, long n) {
    for (long i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)in[i] << 16;
        memcpy(out + i, &bits, 4);
    }
}

const sd3k_table sd3k_baseline_table = {
    softmax_row_baseline, gelu_tanh_baseline, sigmoid_mul_baseline, layer_norm_row_baseline,
    norm_modulate_row_baseline, rms_norm_row_baseline, modulate_row_baseline, gated_add_row_baseline,
    round_bf16_baseline, widen_bf16_baseline, exp_all_baseline, attention_run_baseline,
    attention_backward_run_baseline, gelu_tanh_grad_baseline, layer_norm_grad_row_baseline,
};
