#!/usr/bin/env bash
# Print the CMAKE_ARGS scripts/setup.sh builds llama-cpp-python with on this machine.
#
#   bash scripts/llama_cmake_args.sh [CPUINFO]     # default /proc/cpuinfo
#
# llama.cpp's default build (-march=native) segfaults on CPUs that report AMX (docs/llm.md, "The
# llama.cpp build"), so the build is AVX2 plus the vector extensions this CPU has and its kernel
# enables: /proc/cpuinfo lists only those. AMX is never turned on.
set -euo pipefail
cpuinfo="${1:-/proc/cpuinfo}"
args="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAVA_BUILD=OFF"
cpu_flags=" $(grep -m1 '^flags' "$cpuinfo" 2>/dev/null | cut -d: -f2 || true) "  # none listed (macOS): AVX2 only
has_cpu() { for flag in "$@"; do [[ "$cpu_flags" == *" $flag "* ]] || return 1; done; }
# AVX-512: prompt evaluation 1.27x faster on a 2-core Xeon with it (docs/benchmarks.md, bench_speed round 6).
if has_cpu avx512f avx512cd avx512vl avx512dq avx512bw; then
    args+=" -DGGML_AVX512=ON"
    if has_cpu avx512vbmi; then args+=" -DGGML_AVX512_VBMI=ON"; fi
    if has_cpu avx512_vnni; then args+=" -DGGML_AVX512_VNNI=ON"; fi
    if has_cpu avx512_bf16; then args+=" -DGGML_AVX512_BF16=ON"; fi
fi
# AVX-VNNI (CPUs without AVX-512, e.g. Alder Lake laptops): what -march=native would use there.
if has_cpu avx_vnni; then args+=" -DGGML_AVX_VNNI=ON"; fi
printf '%s\n' "$args"
