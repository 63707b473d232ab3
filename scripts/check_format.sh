#!/usr/bin/env bash
# Fails when a C++ or CUDA source differs from what clang-format (with the repository's .clang-format) makes of it.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.h' '*.cpp' '*.cu' '*.cuh')
[[ ${#files[@]} -eq 0 ]] && exit 0
if ! clang-format --dry-run -Werror "${files[@]}"; then
  echo "check_format: run 'clang-format -i' on the files above" >&2
  exit 1
fi
echo "check_format: ${#files[@]} files clean"
