#!/usr/bin/env bash
# Fails on an #include that points up the layer order (see STYLE.md §1):
#   kernels ← tensor core ← tensor/autograd ← tensor/ops ← nn ← optim ← data ← apps
# kernels include only kernels; the tensor core includes neither autograd/ nor ops/; autograd does not
# include ops/; and no library folder includes a folder above it.
set -euo pipefail
set -f  # the pathspecs below are for git, not for the shell
cd "$(dirname "$0")/.."

status=0
# check "PATHSPECS" FORBIDDEN_REGEX WHY: PATHSPECS are git glob pathspecs, where * stays inside one folder
# and ** crosses folders.
check() {
  local files specs=()
  for spec in $1; do specs+=(":(glob)$spec"); done
  mapfile -t files < <(git ls-files -- "${specs[@]}" | grep -E '\.(h|cpp|cu|cuh)$' || true)
  [[ ${#files[@]} -eq 0 ]] && return 0
  local hits
  hits=$(grep -HnE "^#include \"($2)" "${files[@]}" || true)
  if [[ -n "$hits" ]]; then
    echo "check_layering: $3:" >&2
    echo "$hits" >&2
    status=1
  fi
}

check 'kernels/**' 'tensor/|nn/|optim/|data/|apps/' "kernels must not include the layers above them"
check 'tensor/*.h tensor/*.cpp' 'tensor/autograd/|tensor/ops/|nn/|optim/|data/|apps/' "the tensor core must not include autograd/, ops/ or later layers"
check 'tensor/autograd/**' 'tensor/ops/|nn/|optim/|data/|apps/' "autograd must not include ops/ or later layers"
check 'tensor/ops/**' 'nn/|optim/|data/|apps/' "ops must not include later layers"
check 'nn/**' 'optim/|data/|apps/' "nn must not include optim/, data/ or apps/"
check 'optim/**' 'data/|apps/' "optim must not include data/ or apps/"
check 'data/**' 'nn/|optim/|apps/' "data may use only the tensor layer"

[[ $status -eq 0 ]] && echo "check_layering: includes point one way"
exit $status
