// Batch inference of a forest: one thread per row walks every tree in order and adds its leaf's value,
// so each row's sum is taken in the same order as the CPU path's node walks and equals it. The forest
// is the compiled forest's flat node arrays (predict::forest::FlatTree), concatenated over trees:
// node fields in separate arrays, children as tree-local indices (< 0: leaf !child), categorical
// bitsets as global word offsets.
//
// flags: bit 0 default_left, bits 1-2 missing rule (0 NaN, 1 zero, 2 none), bit 3 cat_inverted.

#define ZERO_THRESHOLD 1e-35

__device__ __forceinline__ bool node_goes_left(double x, double thr, u8 flags, u32 cat_len, u32 cat_start,
                                               const u32* __restrict__ cat_words) {
    const bool default_left = flags & 1;
    if (cat_len > 0) {
        const bool nan = isnan(x);
        bool in_set = false;
        if (!nan && x >= 0.0) {
            const u32 c = (u32)x;
            const u32 w = c >> 5;
            in_set = w < cat_len && ((cat_words[cat_start + w] >> (c & 31)) & 1u);
        }
        if (flags & 8) return nan ? default_left : !in_set;
        return in_set;
    }
    const u32 missing = (flags >> 1) & 3;
    if (missing == 0) return isnan(x) ? default_left : x <= thr;
    if (missing == 1) {
        const double v = isnan(x) ? 0.0 : x;
        return fabs(v) <= ZERO_THRESHOLD ? default_left : v <= thr;
    }
    return (isnan(x) ? 0.0 : x) <= thr;
}

// x: rows x nf, row-major. out: rows x k, holding the base scores on entry (already float32-rounded
// when f32_sum), the raw scores on exit.
extern "C" __global__ void predict_forest(const double* __restrict__ x, u32 rows, u32 nf, u32 n_trees, u32 k, int f32_sum,
                                          const u32* __restrict__ node_start, const u32* __restrict__ leaf_start,
                                          const u32* __restrict__ feature, const double* __restrict__ threshold,
                                          const int* __restrict__ left, const int* __restrict__ right,
                                          const u8* __restrict__ flags, const u32* __restrict__ cat_len,
                                          const u32* __restrict__ cat_start, const u32* __restrict__ cat_words,
                                          const double* __restrict__ leaf_value, double* __restrict__ out) {
    const u32 r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    const double* row = x + (size_t)r * nf;
    double* o = out + (size_t)r * k;
    for (u32 t = 0; t < n_trees; ++t) {
        const u32 base = node_start[t];
        int at = node_start[t + 1] > base ? 0 : -1;
        while (at >= 0) {
            const u32 j = base + (u32)at;
            at = node_goes_left(row[feature[j]], threshold[j], flags[j], cat_len[j], cat_start[j], cat_words) ? left[j] : right[j];
        }
        const double v = leaf_value[leaf_start[t] + (u32)(~at)];
        const u32 c = t % k;
        if (f32_sum) {
            o[c] = (double)((float)o[c] + (float)v);
        } else {
            o[c] = o[c] + v;
        }
    }
}
