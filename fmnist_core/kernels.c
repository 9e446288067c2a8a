/* Fused CPU kernels for the encoder's memory-bound layers (see kernels.py, which compiles this file
 * with the machine's C compiler and falls back to PyTorch's operators where it cannot).
 *
 * 1. The first block: Conv2d(1 -> C, 3x3, padding 1) + bias, MaxPool2d(2), ReLU, in one pass.
 *    PyTorch writes the full-resolution convolution output (N x C x 28 x 28 floats, 100 KB per image
 *    at C = 32), reads it back to pool it and writes int64 indices; here each pooled value is computed
 *    from its 4x4 input patch in registers. Layout: x (N, H+2, W+2), the image zero-padded; C a multiple
 *    of 16; out (N, H/2, W/2, C), i.e. a
 *    channels-last (N, C, H/2, W/2) tensor; arg (same shape, uint8) is which of the four window
 *    positions won, row-major, the first on ties as in PyTorch's max-pool.
 * 2. Dropout: keep-mask draw, scaling and the mask for the backward pass in one pass. Element i is
 *    kept when 16 bits of splitmix64(seed, i / 4) are >= drop16 (drop probability drop16 / 65536).
 *
 * Single-threaded: the caller splits work across threads (ctypes releases the GIL).
 */
#include <stdint.h>
#include <string.h>

#define VB 16                  /* channels per block: one 512-bit vector; C must be a multiple */
#define GOLDEN 0x9E3779B97F4A7C15ULL

/* GCC/Clang vector extensions: 16 lanes, split into narrower instructions where the CPU lacks them. */
typedef float vf __attribute__((vector_size(4 * VB)));
typedef int32_t vi __attribute__((vector_size(4 * VB)));
typedef uint8_t vb __attribute__((vector_size(VB)));

static inline vf loadf(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void storef(float *p, vf v) { memcpy(p, &v, sizeof v); }

/* The 4x4 input patch under pooled pixel (i, j): rows 2i..2i+3, columns 2j..2j+3 of the padded image;
 * window position q = 2 dy + dx sees patch[(dy + ky) * 4 + dx + kx] through tap (ky, kx). */
static inline void load_patch(const float *xi, int64_t ws, int64_t i, int64_t j, float patch[16]) {
    for (int r = 0; r < 4; r++)
        for (int s = 0; s < 4; s++) patch[r * 4 + s] = xi[(2 * i + r) * ws + 2 * j + s];
}
#define PATCH(q, tap) patch[(((q) >> 1) + (tap) / 3) * 4 + ((q) & 1) + (tap) % 3]

/* Work items [item0, item1), one item = one (image, pooled row). xp: (N, H+2, W+2), zero-padded. */
void first_block_forward(const float *xp, int64_t h, int64_t w, const float *wt /* [9][c] */,
                         const float *bias, int64_t c, float *out, uint8_t *arg, int64_t item0,
                         int64_t item1) {
    const int64_t ho = h / 2, wo = w / 2, ws = w + 2;
    for (int64_t cb = 0; cb < c; cb += VB) {
        vf wk[9];
        for (int tap = 0; tap < 9; tap++) wk[tap] = loadf(wt + tap * c + cb);
        const vf b = loadf(bias + cb);
        for (int64_t item = item0; item < item1; item++) {
            const int64_t img = item / ho, i = item % ho;
            const float *xi = xp + img * (h + 2) * ws;
            for (int64_t j = 0; j < wo; j++) {
                float patch[16];
                load_patch(xi, ws, i, j, patch);
                vf best = {0};
                vi won = {0};
                for (int q = 0; q < 4; q++) {
                    vf a = PATCH(q, 0) * wk[0];
                    for (int tap = 1; tap < 9; tap++) a += PATCH(q, tap) * wk[tap];
                    if (q == 0) { best = a; continue; }
                    /* strictly greater: the first position wins a tie, as in PyTorch's max-pool */
                    const vi take = a > best;
                    best = (vf)(((vi)a & take) | ((vi)best & ~take));
                    won = (won & ~take) | (q & take);
                }
                const vf v = best + b;
                const vi pos = v > 0.0f;
                const int64_t o = ((img * ho + i) * wo + j) * c + cb;
                storef(out + o, (vf)((vi)v & pos));
                if (arg) {
                    const vb k = __builtin_convertvector(won, vb);
                    memcpy(arg + o, &k, sizeof k);
                }
            }
        }
    }
}

/* Gradients of the weights (gw [9][c]) and bias (gb [c]) over work items [item0, item1); the caller
 * zeroes gw and gb and sums the parts of several threads. No input gradient: the input is the image. */
void first_block_backward(const float *xp, int64_t h, int64_t w, const float *out,
                          const uint8_t *arg, const float *gout, int64_t c, float *gw, float *gb,
                          int64_t item0, int64_t item1) {
    const int64_t ho = h / 2, wo = w / 2, ws = w + 2;
    for (int64_t cb = 0; cb < c; cb += VB) {
        vf acc[9] = {{0}};
        vf accb = {0};
        for (int64_t item = item0; item < item1; item++) {
            const int64_t img = item / ho, i = item % ho;
            const float *xi = xp + img * (h + 2) * ws;
            for (int64_t j = 0; j < wo; j++) {
                float patch[16];
                load_patch(xi, ws, i, j, patch);
                const int64_t o = ((img * ho + i) * wo + j) * c + cb;
                /* ReLU passes the gradient where the output is positive; the pool, to the winner. */
                const vi pos = loadf(out + o) > 0.0f;
                const vf gp = (vf)((vi)loadf(gout + o) & pos);
                vb kb;
                memcpy(&kb, arg + o, sizeof kb);
                const vi k = __builtin_convertvector(kb, vi);
                accb += gp;
                for (int q = 0; q < 4; q++) {
                    const vf gq = (vf)((vi)gp & (k == q));
                    for (int tap = 0; tap < 9; tap++) acc[tap] += PATCH(q, tap) * gq;
                }
            }
        }
        for (int tap = 0; tap < 9; tap++) storef(gw + tap * c + cb, loadf(gw + tap * c + cb) + acc[tap]);
        storef(gb + cb, loadf(gb + cb) + accb);
    }
}

static inline uint64_t splitmix64(uint64_t seed, uint64_t counter) {
    uint64_t z = seed + (counter + 1) * GOLDEN;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Elements [e0, e1) (e0 a multiple of 4): out = keep ? x * scale : 0, keep = the mask (0 or 1). */
void dropout_forward(const float *x, uint64_t seed, uint32_t drop16, float scale, float *out,
                     uint8_t *keep, int64_t e0, int64_t e1) {
    enum { BLOCK = 256 };
    uint64_t words[BLOCK];
    for (int64_t base = e0; base < e1; base += 4 * BLOCK) {
        const int64_t count = (e1 - base + 3) / 4 < BLOCK ? (e1 - base + 3) / 4 : BLOCK;
        const uint64_t g0 = (uint64_t)base / 4;
        for (int64_t k = 0; k < count; k++) words[k] = splitmix64(seed, g0 + (uint64_t)k);
        const int64_t stop = base + 4 * count < e1 ? base + 4 * count : e1;
        for (int64_t e = base; e < stop; e++) {
            const uint32_t lane = (uint32_t)(words[(e - base) >> 2] >> (16 * ((e - base) & 3))) & 0xFFFFu;
            const uint8_t k = lane >= drop16;
            keep[e] = k;
            out[e] = k ? x[e] * scale : 0.0f;
        }
    }
}

/* gin = keep ? gout * scale : 0 over elements [e0, e1). */
void dropout_backward(const float *gout, const uint8_t *keep, float scale, float *gin, int64_t e0,
                      int64_t e1) {
    for (int64_t e = e0; e < e1; e++) gin[e] = keep[e] ? gout[e] * scale : 0.0f;
}
