// Leaf histograms: one block per (feature, slice of the leaf's rows). Each block sums its rows into a
// histogram of its own in shared memory (32-bit counters for quantised gradients, exact for up to 2^23
// rows a block; 64-bit for fixed-point), then adds the non-empty bins to the leaf's global histogram
// with 64-bit integer atomics. Integer sums are exact whatever the order, so the histogram equals the
// CPU learner's bit for bit. The larger child of a split is never built: the host takes it as the
// parent minus the smaller one.
//
// hist layout: per bin (g, h) as two i64, features at offsets[f]. rows == 0: the leaf is every row.

#define SHARED_BINS 1024

// Quantised gradients: (i8 gradient, u8 hessian) per row, 32-bit block counters.
struct Quantized {
    typedef signed char Value;
    typedef int Counter;
    static const u32 shared_bins = SHARED_BINS;
    static __device__ __forceinline__ void read(const signed char* gh, u32 r, Counter& g, Counter& h) {
        g = (int)gh[2 * r];
        h = (int)(u8)gh[2 * r + 1];
    }
};

// Fixed-point gradients: (i32, i32) per row, 64-bit block counters (two's complement).
struct Fixed {
    typedef int Value;
    typedef u64 Counter;
    static const u32 shared_bins = SHARED_BINS / 2;
    static __device__ __forceinline__ void read(const int* gh, u32 r, Counter& g, Counter& h) {
        g = (u64)(i64)gh[2 * r];
        h = (u64)(i64)gh[2 * r + 1];
    }
};

template <typename B, typename G>
__device__ void build_hist(const B* __restrict__ bins, u32 n, const u32* __restrict__ rows, u32 nrows,
                     const typename G::Value* __restrict__ gh, const u32* __restrict__ feats,
                     const u32* __restrict__ offsets, const u32* __restrict__ nbins, u32 rows_per_block,
                     i64* __restrict__ hist) {
    typedef typename G::Counter C;
    // 8 KB either way: 2 x 1024 32-bit or 2 x 512 64-bit counters.
    __shared__ __align__(8) unsigned char raw[2 * SHARED_BINS * sizeof(int)];
    C* sh = reinterpret_cast<C*>(raw);
    const u32 f = feats[blockIdx.y];
    const u32 nb = nbins[f];
    const bool shared = nb <= G::shared_bins;
    i64* out = hist + 2 * (size_t)offsets[f];
    if (shared) {
        for (u32 i = threadIdx.x; i < 2 * nb; i += blockDim.x) sh[i] = 0;
        __syncthreads();
    }
    const B* col = bins + (size_t)f * n;
    const u32 start = blockIdx.x * rows_per_block;
    const u32 end = min(start + rows_per_block, nrows);
    for (u32 i = start + threadIdx.x; i < end; i += blockDim.x) {
        const u32 r = rows ? rows[i] : i;
        C g, h;
        G::read(gh, r, g, h);
        const u32 b = (u32)col[r];
        if (shared) {
            atomicAdd(&sh[2 * b], g);
            atomicAdd(&sh[2 * b + 1], h);
        } else {
            add_i64(&out[2 * b], (i64)g);
            add_i64(&out[2 * b + 1], (i64)h);
        }
    }
    if (shared) {
        __syncthreads();
        for (u32 i = threadIdx.x; i < nb; i += blockDim.x) {
            const i64 g = (i64)sh[2 * i], h = (i64)sh[2 * i + 1];
            if (g != 0 || h != 0) {
                add_i64(&out[2 * i], g);
                add_i64(&out[2 * i + 1], h);
            }
        }
    }
}

extern "C" __global__ void hist_quantized_u8(const u8* bins, u32 n, const u32* rows, u32 nrows, const signed char* gh,
                                             const u32* feats, const u32* offsets, const u32* nbins, u32 rows_per_block, i64* hist) {
    build_hist<u8, Quantized>(bins, n, rows, nrows, gh, feats, offsets, nbins, rows_per_block, hist);
}
extern "C" __global__ void hist_quantized_u16(const u16* bins, u32 n, const u32* rows, u32 nrows, const signed char* gh,
                                              const u32* feats, const u32* offsets, const u32* nbins, u32 rows_per_block, i64* hist) {
    build_hist<u16, Quantized>(bins, n, rows, nrows, gh, feats, offsets, nbins, rows_per_block, hist);
}
extern "C" __global__ void hist_fixed_u8(const u8* bins, u32 n, const u32* rows, u32 nrows, const int* gh,
                                         const u32* feats, const u32* offsets, const u32* nbins, u32 rows_per_block, i64* hist) {
    build_hist<u8, Fixed>(bins, n, rows, nrows, gh, feats, offsets, nbins, rows_per_block, hist);
}
extern "C" __global__ void hist_fixed_u16(const u16* bins, u32 n, const u32* rows, u32 nrows, const int* gh,
                                          const u32* feats, const u32* offsets, const u32* nbins, u32 rows_per_block, i64* hist) {
    build_hist<u16, Fixed>(bins, n, rows, nrows, gh, feats, offsets, nbins, rows_per_block, hist);
}

// The larger child: parent minus the built sibling, bin by bin (integers, so exact).
extern "C" __global__ void hist_subtract(const i64* __restrict__ parent, const i64* __restrict__ built, i64* __restrict__ out, u32 len) {
    for (u32 i = blockIdx.x * blockDim.x + threadIdx.x; i < len; i += gridDim.x * blockDim.x) out[i] = parent[i] - built[i];
}
