"""scripts/llama_cmake_args.sh: the llama.cpp build follows the CPU's listed extensions, never AMX."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "llama_cmake_args.sh"
BASE = "fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c bmi1 avx2 bmi2"
AVX512 = "avx512f avx512dq avx512cd avx512bw avx512vl"


def cmake_args(tmp_path: Path, flags: str) -> list[str]:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    done = subprocess.run(["bash", str(SCRIPT), str(cpuinfo)], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_an_avx2_cpu_gets_the_portable_avx2_build(tmp_path: Path) -> None:
    args = cmake_args(tmp_path, BASE)
    assert args == [
        "-DGGML_NATIVE=OFF",
        "-DGGML_AVX=ON",
        "-DGGML_AVX2=ON",
        "-DGGML_FMA=ON",
        "-DGGML_F16C=ON",
        "-DGGML_BMI2=ON",
        "-DLLAVA_BUILD=OFF",
    ]


def test_avx512_and_its_extensions_only_where_listed_and_never_amx(tmp_path: Path) -> None:
    server = cmake_args(tmp_path, f"{BASE} {AVX512} avx512vbmi avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8")
    assert {"-DGGML_AVX512=ON", "-DGGML_AVX512_VBMI=ON", "-DGGML_AVX512_VNNI=ON", "-DGGML_AVX512_BF16=ON"} <= set(
        server
    )
    assert "-DGGML_NATIVE=OFF" in server
    assert not [arg for arg in server if "AMX" in arg]
    without_vnni = cmake_args(tmp_path, f"{BASE} {AVX512}")
    assert "-DGGML_AVX512=ON" in without_vnni
    assert not [arg for arg in without_vnni if "VNNI" in arg or "VBMI" in arg or "BF16" in arg]


@pytest.mark.parametrize("missing", AVX512.split())
def test_avx512_needs_every_part_the_build_compiles_for(tmp_path: Path, missing: str) -> None:
    flags = " ".join(flag for flag in f"{BASE} {AVX512} avx512_vnni".split() if flag != missing)
    args = cmake_args(tmp_path, flags)
    assert not [arg for arg in args if "AVX512" in arg]


def test_avx_vnni_on_a_laptop_cpu_and_no_cpuinfo_at_all(tmp_path: Path) -> None:
    assert "-DGGML_AVX_VNNI=ON" in cmake_args(tmp_path, f"{BASE} avx_vnni")
    # A flag name that merely contains another is not it (avx512_vnni is not avx_vnni).
    assert "-DGGML_AVX_VNNI=ON" not in cmake_args(tmp_path, f"{BASE} {AVX512} avx512_vnni")
    done = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "absent")], capture_output=True, text=True, check=True)
    assert "-DGGML_AVX2=ON" in done.stdout and "AVX512" not in done.stdout
