// Gradient and hessian quantisation (use_quantized_grad): the largest magnitudes, then stochastic
// rounding of each row to integers, with the same keyed draws as the CPU path (gbdt::boosting::quantize),
// so both give the same integers.

// maxes[0] = bits of max |g|, maxes[1] = bits of max(0, h). Non-negative floats order as their bits.
extern "C" __global__ void absmax_gh(const float* __restrict__ g, const float* __restrict__ h, u32 n, u32* maxes) {
    u32 mg = 0, mh = 0;
    for (u32 i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        u32 bg = __float_as_uint(g[i]) & 0x7fffffffu;
        float hv = h[i];
        u32 bh = hv > 0.0f ? __float_as_uint(hv) : 0u;
        mg = max(mg, bg);
        mh = max(mh, bh);
    }
    for (int o = 16; o > 0; o >>= 1) {
        mg = max(mg, __shfl_down_sync(0xffffffffu, mg, o));
        mh = max(mh, __shfl_down_sync(0xffffffffu, mh, o));
    }
    if ((threadIdx.x & 31) == 0) {
        atomicMax(&maxes[0], mg);
        atomicMax(&maxes[1], mh);
    }
}

// out[2i] = rounded gradient in [-half, half], out[2i+1] = rounded hessian in [0, bins].
extern "C" __global__ void quantize_gh(const float* __restrict__ g, const float* __restrict__ h, u32 n, double gs, double hs,
                                       double half, double bins, u64 seed_g, u64 seed_h, signed char* __restrict__ out) {
    for (u32 i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        double qg = floor((double)g[i] / gs + keyed_uniform(seed_g, i));
        qg = fmin(fmax(qg, -half), half);
        double qh = floor((double)h[i] / hs + keyed_uniform(seed_h, i));
        qh = fmin(fmax(qh, 0.0), bins);
        out[2 * i] = (signed char)(int)qg;
        out[2 * i + 1] = (signed char)(u8)(int)qh;
    }
}
