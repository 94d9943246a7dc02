// Stable partition of one leaf's rows by a split, in three passes over tiles of PART_TILE rows:
// count each tile's left rows, scan the counts, then scatter every row to its place. Rows keep their
// order on each side, as the CPU learner's partition does, so a leaf holds the same rows in the same
// order on both paths. side[b] = 1 when bin b goes left (numeric, missing and categorical rules are
// all folded into that table on the host).

#define PART_THREADS 256
#define PART_ITEMS 16
#define PART_TILE (PART_THREADS * PART_ITEMS)

template <typename B>
__device__ __forceinline__ u32 goes_left(const B* col, const u8* side, u32 r) {
    return (u32)side[(u32)col[r]];
}

template <typename B>
__device__ void count_left(const B* __restrict__ col, const u8* __restrict__ side, const u32* __restrict__ rows, u32 len,
                           u32* __restrict__ tile_left) {
    __shared__ u32 warp_sum[PART_THREADS / 32];
    const u32 start = blockIdx.x * PART_TILE;
    u32 c = 0;
    for (u32 k = 0; k < PART_ITEMS; ++k) {
        const u32 i = start + k * PART_THREADS + threadIdx.x;
        if (i < len) c += goes_left(col, side, rows[i]);
    }
    for (int o = 16; o > 0; o >>= 1) c += __shfl_down_sync(0xffffffffu, c, o);
    if ((threadIdx.x & 31) == 0) warp_sum[threadIdx.x >> 5] = c;
    __syncthreads();
    if (threadIdx.x == 0) {
        u32 t = 0;
        for (u32 w = 0; w < PART_THREADS / 32; ++w) t += warp_sum[w];
        tile_left[blockIdx.x] = t;
    }
}

// Exclusive scan of the tiles' left counts, in place; tile_left[tiles] = all left rows. One thread:
// a leaf of 2^32 rows has 2^20 tiles, a few hundred microseconds at worst, next to the passes around it.
extern "C" __global__ void scan_tiles(u32* tile_left, u32 tiles) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    u32 acc = 0;
    for (u32 t = 0; t < tiles; ++t) {
        const u32 c = tile_left[t];
        tile_left[t] = acc;
        acc += c;
    }
    tile_left[tiles] = acc;
}

template <typename B>
__device__ void scatter(const B* __restrict__ col, const u8* __restrict__ side, const u32* __restrict__ rows, u32 len,
                        const u32* __restrict__ tile_left, u32* __restrict__ out) {
    __shared__ u32 warp_left[PART_THREADS / 32];
    const u32 start = blockIdx.x * PART_TILE;
    const u32 total_left = tile_left[gridDim.x];
    u32 left_before = tile_left[blockIdx.x];
    u32 right_before = start - left_before;
    const u32 lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (u32 k = 0; k < PART_ITEMS; ++k) {
        const u32 round_start = start + k * PART_THREADS;
        if (round_start >= len) break;  // the same for every thread of the block
        const u32 i = round_start + threadIdx.x;
        const bool valid = i < len;
        const u32 r = valid ? rows[i] : 0;
        const bool left = valid && goes_left(col, side, r);
        const u32 ballot = __ballot_sync(0xffffffffu, left);
        if (lane == 0) warp_left[warp] = __popc(ballot);
        __syncthreads();
        u32 before_warp = 0, round_left = 0;
        for (u32 w = 0; w < PART_THREADS / 32; ++w) {
            const u32 c = warp_left[w];
            if (w < warp) before_warp += c;
            round_left += c;
        }
        // Left rows of this round before this thread; every thread before a valid one is valid.
        const u32 my_left = before_warp + __popc(ballot & ((1u << lane) - 1u));
        if (valid) {
            if (left) {
                out[left_before + my_left] = r;
            } else {
                out[total_left + right_before + (threadIdx.x - my_left)] = r;
            }
        }
        const u32 in_round = min((u32)PART_THREADS, len - round_start);
        left_before += round_left;
        right_before += in_round - round_left;
        __syncthreads();
    }
}

extern "C" __global__ void count_left_u8(const u8* col, const u8* side, const u32* rows, u32 len, u32* tile_left) {
    count_left<u8>(col, side, rows, len, tile_left);
}
extern "C" __global__ void count_left_u16(const u16* col, const u8* side, const u32* rows, u32 len, u32* tile_left) {
    count_left<u16>(col, side, rows, len, tile_left);
}
extern "C" __global__ void scatter_u8(const u8* col, const u8* side, const u32* rows, u32 len, const u32* tile_left, u32* out) {
    scatter<u8>(col, side, rows, len, tile_left, out);
}
extern "C" __global__ void scatter_u16(const u16* col, const u8* side, const u32* rows, u32 len, const u32* tile_left, u32* out) {
    scatter<u16>(col, side, rows, len, tile_left, out);
}
