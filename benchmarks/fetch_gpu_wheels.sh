#!/usr/bin/env bash
# Download into .whl/ (ignored; named in the `run` call's carry) the wheels the GPU machine lacks.
#
# The GPU machine (kind nvidia-h200) has Python 3.12 and a CUDA PyTorch with torchvision, numpy,
# scipy, scikit-learn, pillow, pyyaml, tqdm, matplotlib, pandas, seaborn, pytest and hypothesis, but
# neither geoopt nor POT, and no package index. geoopt needs torch, numpy and scipy, POT numpy and
# scipy: all there, so --no-deps is complete. papermill and dvc are not needed (tests/test_notebooks.py
# skips without papermill). Pins: the versions of this project's environment. POT >= 0.9.7 is needed
# (hdd_lib calls ot.batch.solve_batch(method=...)); its wheel is 33 MB because one extension module
# (ot/bsp) carries 170 MB of debug information, so that is stripped (`strip --strip-debug`, code and
# symbols kept) and the wheel's RECORD rewritten: 33 MB -> about 2 MB.
#
#   bash benchmarks/fetch_gpu_wheels.sh        # prints each wheel's size and what the `run` call carries
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=("geoopt==0.5.1" "POT==0.9.7.post1")
mkdir -p .whl
for spec in "${WHEELS[@]}"; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "$spec" 2>&1 | grep -v "^WARNING: Location" || true
done
# one version of each package, or the install on the GPU machine stops
dupes=$(ls .whl/*.whl | xargs -n1 basename | cut -d- -f1 | tr 'A-Z_' 'a-z-' | sort | uniq -d)
if [ -n "$dupes" ]; then echo "error: several versions in .whl/ of: $dupes (delete the old ones)" >&2; exit 1; fi

python3 - .whl/*.whl <<'PY'
"""Strip debug information from the shared objects of each wheel over 8 MB; rewrite its RECORD."""
import base64, hashlib, os, subprocess, sys, tempfile, zipfile

def digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

for path in sys.argv[1:]:
    if os.path.getsize(path) < 8 << 20:
        continue
    with zipfile.ZipFile(path) as zin:
        items = [(info, zin.read(info)) for info in zin.infolist()]
    out, rows = [], []
    for info, data in items:
        if info.filename.endswith(".so"):
            with tempfile.NamedTemporaryFile(suffix=".so", delete=False) as f:
                f.write(data)
            subprocess.run(["strip", "--strip-debug", f.name], check=True)
            data = open(f.name, "rb").read()
            os.unlink(f.name)
        if not info.filename.endswith(".dist-info/RECORD"):
            rows.append(f"{info.filename},{digest(data)},{len(data)}")
        out.append((info, data))
    record = next(info for info, _ in out if info.filename.endswith(".dist-info/RECORD"))
    rows.append(f"{record.filename},,")
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
        for info, data in out:
            zout.writestr(info, ("\n".join(rows) + "\n").encode() if info is record else data, zipfile.ZIP_DEFLATED)
    os.replace(tmp, path)
    print(f"stripped {os.path.basename(path)}: {os.path.getsize(path) / 2**20:.1f} MB")
PY

du -b .whl/*.whl
data=.data/CIFAR10-JPEG/cifar10-jpeg.tar.gz
[ -f $data ] || echo "note: $data absent; copy it: mkdir -p .data/CIFAR10-JPEG && cp ../shared/datasets/CIFAR10-JPEG/cifar10-jpeg.tar.gz .data/CIFAR10-JPEG/" >&2
total=$(( $(cat .whl/*.whl | wc -c) + $( [ -f $data ] && wc -c <$data || echo 0 ) + $(git ls-files -z | xargs -0 cat | wc -c) ))
echo "carried in all (wheels + data copy + tracked files): $((total / 1024 / 1024)) MiB of 64 MiB"
