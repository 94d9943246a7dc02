// Shared by every ferrox kernel. NVRTC compiles each kernel file with this header prepended
// (src/gpu/mod.rs), so the files need no include paths and no CUDA toolkit headers.
//
// Arithmetic that decides a model (quantisation, sums) is written to round exactly as the CPU path
// does: the kernels are compiled with --fmad=false, divisions are IEEE, sums are integers.

typedef unsigned long long u64;
typedef long long i64;
typedef unsigned int u32;
typedef unsigned char u8;
typedef unsigned short u16;

// SplitMix64 keyed draw, as src/data/sample.rs `keyed_uniform`: a uniform double in [0, 1) that
// depends only on (seed, id).
__device__ __forceinline__ double keyed_uniform(u64 seed, u64 id) {
    u64 s = (seed ^ (id * 0xD6E8FEB86659FD93ULL)) ^ 0x9E3779B97F4A7C15ULL;
    s += 0x9E3779B97F4A7C15ULL;
    u64 z = s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z = z ^ (z >> 31);
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

// A two's-complement add of a signed 64-bit value into a global counter (integer atomics are exact
// and commutative, so the sum does not depend on the order the threads add in).
__device__ __forceinline__ void add_i64(i64* at, i64 v) {
    atomicAdd((u64*)at, (u64)v);
}
