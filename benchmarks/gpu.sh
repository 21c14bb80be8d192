#!/usr/bin/env bash
# The search and `mofn2logic extract` with --device cpu against --device cuda, side by side: a
# table with the ratio and whether both found the same rules (benchmarks/bench_gpu.py), meant to
# take under 5 minutes on a CUDA machine (not yet measured on one), offline. On CUDA the search rows
# and the extract's layers run the layer-at-once search (mofn2logic/search/batched.py).
#
#   bash benchmarks/gpu.sh               # on the CUDA machine (no GPU found: as --cpu-only)
#   bash benchmarks/gpu.sh --cpu-only    # anywhere: torch on the CPU stands in for CUDA (slow on
#                                        # a CPU: the smaller rows only, as --quick)
#   bash benchmarks/gpu.sh --quick       # the smaller rows only
#
# It needs nothing from a network: this checkout; MNIST in ../shared/data/mnist (or $MNIST_DIR);
# a Python >= 3.10 ($PYTHON, default python3) that has numpy, onnx, onnxruntime, sympy, numba,
# networkx, tqdm, matplotlib, setuptools and torch (a CUDA build for the cuda column); and a
# wheelhouse, benchmarks/_wheels, holding the project's dependencies that this Python lacks (on the
# device machine: lark). Fill the wheelhouse beforehand, on a machine with a network, with:
#
#     python3 -m pip download --only-binary=:all: --python-version 3.12 -d benchmarks/_wheels lark
#
# (name any other dependency the target lacks after lark). The script uses this checkout's .venv
# when that runs mofn2logic and torch; otherwise it makes (or reuses) benchmarks/_work/venv-gpu
# with --system-site-packages -- the machine's own torch and CUDA -- and installs the project into
# it from the wheelhouse: pip install --no-index --find-links benchmarks/_wheels -e .
# The MNIST CNN (benchmarks/_work/mnist_cnn_relu.onnx) is trained first when missing (about a
# minute). benchmarks/_work and benchmarks/_wheels are ignored by git: on a device machine, carry
# them (and MNIST, see $MNIST_DIR) along.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORK="benchmarks/_work"
WHEELS="benchmarks/_wheels"
PYTHON="${PYTHON:-python3}"
FETCH="python3 -m pip download --only-binary=:all: --python-version 3.12 -d $WHEELS lark"

cpu_only=0
quick=()
for arg in "$@"; do
  case "$arg" in
    --cpu-only) cpu_only=1 ;;
    --quick) quick=(--quick) ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "gpu.sh: unknown option $arg (expected --cpu-only, --quick)" >&2; exit 2 ;;
  esac
done

fail() { echo "gpu.sh: $*" >&2; exit 1; }

mkdir -p "$WORK"
export MNIST_DIR="${MNIST_DIR:-$ROOT/../shared/data/mnist}"
[ -f "$MNIST_DIR/t10k-images-idx3-ubyte.gz" ] || \
  fail "MNIST is not in $MNIST_DIR: copy ../shared/data/mnist beside the checkout or set MNIST_DIR"

# ---- the Python environment ------------------------------------------------------------------
works() { "$1" -c "import mofn2logic, lark, torch, numba" >/dev/null 2>&1; }
if [ -x .venv/bin/python ] && works .venv/bin/python; then
  PY="$ROOT/.venv/bin/python"
else
  VENV="$ROOT/$WORK/venv-gpu"
  command -v "$PYTHON" >/dev/null || fail "no $PYTHON: set PYTHON to a Python >= 3.10 that has torch"
  "$PYTHON" -c "import torch, numba, numpy, onnx, onnxruntime, sympy, setuptools" 2>/dev/null || \
    fail "$PYTHON lacks one of torch, numba, numpy, onnx, onnxruntime, sympy, setuptools (the wheelhouse holds only what the machine lacks)"
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv --system-site-packages "$VENV" || fail "could not make $VENV (python3-venv missing?)"
  fi
  PY="$VENV/bin/python"
  if ! works "$PY"; then
    [ -d "$WHEELS" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1 || \
      fail "no wheelhouse in $WHEELS; fill it, on a machine with a network, with: $FETCH"
    echo "installing mofn2logic into $VENV from $WHEELS (offline)"
    "$PY" -m pip install --disable-pip-version-check --no-index --find-links "$WHEELS" \
      --no-build-isolation -e . >"$WORK/pip-install.log" 2>&1 || \
      fail "pip could not install the project offline (see $WORK/pip-install.log); if a dependency is missing from $WHEELS, add it with: $FETCH NAME"
    works "$PY" || fail "$PY still cannot import mofn2logic, lark, torch and numba"
  fi
fi

# ---- which devices ---------------------------------------------------------------------------
second=cuda
if [ "$cpu_only" = 1 ]; then
  second=torch
elif ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu.sh: torch finds no CUDA device; running as --cpu-only (torch on the CPU stands in for CUDA)"
  second=torch
fi
"$PY" -c "import torch; print('torch', torch.__version__, '| CUDA device:', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none')"
echo "CPU cores: $(nproc)"

# ---- the model ---------------------------------------------------------------------------------
if [ ! -f "$WORK/mnist_cnn_relu.onnx" ]; then
  echo "training the MNIST CNN once ($WORK/mnist_cnn_relu.onnx)"
  (cd benchmarks && "$PY" train_mnist_cnn.py --out _work) || fail "training the MNIST CNN failed"
fi

# ---- the table -------------------------------------------------------------------------------------
PYTHONUNBUFFERED=1 "$PY" benchmarks/bench_gpu.py --second "$second" "${quick[@]}"
