#!/usr/bin/env bash
# The default build is pure Rust plus the C runtime. Build it (the quick start's release build,
# which scripts/test.sh then reuses) and prove it, in two checks that fail otherwise:
#   1. the dependency tree of the default features holds no BLAS/LAPACK/MKL source crate;
#   2. the built `airinfer` links no shared library beyond the C runtime (ldd).
# Extra arguments go to cargo (e.g. `--features airinfer-phy/clarabel` shows both checks fail).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -q "$@"

forbidden='^(openblas-src|openblas-build|blas-src|blas-sys|lapack-src|lapack-sys|netlib-src|intel-mkl-src|accelerate-src|r-src|openssl-sys)$'
crates=$(cargo tree --workspace -e normal,build --prefix none --format '{p}' "$@" | awk '{print $1}' | sort -u)
bad=$(grep -E "$forbidden" <<<"$crates" || true)
if [ -n "$bad" ]; then
  echo "check_pure: the default build depends on native-library crates:" $bad >&2
  cargo tree --workspace -e normal,build -i "$(head -1 <<<"$bad")" "$@" >&2 || true
  exit 1
fi
echo "check_pure: $(wc -l <<<"$crates") crates in the default build, none of: ${forbidden//[\^\$()]/}"

# ldd: the C runtime (libc, libm, libgcc_s, the loader, the vDSO, glibc's split-out libpthread/
# libdl/librt) and nothing else
allowed='^(linux-vdso\.so\..*|libc\.so\..*|libm\.so\..*|libgcc_s\.so\..*|ld-linux.*\.so\..*|libpthread\.so\..*|libdl\.so\..*|librt\.so\..*)$'
libs=$(ldd "$target/release/airinfer" | awk '{print $1}' | xargs -n1 basename)
extra=$(grep -vE "$allowed" <<<"$libs" || true)
if [ -n "$extra" ]; then
  echo "check_pure: $target/release/airinfer links more than the C runtime:" $extra >&2
  exit 1
fi
echo "check_pure: $target/release/airinfer links only" $libs
