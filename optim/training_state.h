// Training state: what, beside the model file, an interrupted training run needs to resume exactly where it
// stopped: the optimizer's per-parameter state (momentum, Adam moments) and step count, the epoch and step
// counters, the trainer's own bookkeeping (best metric so far, epochs without improvement), and the full
// state of every random generator the run draws from (shuffling, augmentation, dropout).
//
// It is a second safetensors file (see nn/safetensors.h): the optimizer tensors are stored under
// "optimizer.<name>", and the rest is one JSON document under the metadata key "dscope_training_state".
// Generator words are 64-bit integers, which JSON (and nlohmann) carry exactly. Model weights and batch-norm
// statistics are not repeated here: they are in the model file (nn/checkpoint.h), saved at the same time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "optim/optimizer.h"
#include "tensor/random.h"

namespace dscope::optim {

struct TrainingProgress {
  std::int64_t epoch = 0;  // epochs completed
  std::int64_t step = 0;   // optimizer steps completed (what learning-rate schedules read)
  // The trainer's own bookkeeping, saved and restored verbatim (finite values only).
  std::map<std::string, double> values;
};

// The generators a run draws from, by name. Saving reads them; loading overwrites them.
using NamedGenerators = std::map<std::string, Generator*>;

// Writes the optimizer state, `progress` and the state of each generator to `path`.
void save_training_state(const std::filesystem::path& path, const Optimizer& optimizer,
                         const TrainingProgress& progress, const NamedGenerators& generators);

// Restores what save_training_state wrote into `optimizer` (which must hold the same parameters) and into
// `generators` (the same names as were saved), and returns the progress. Throws IoError / DataError for an
// unreadable or malformed file, ValueError / ShapeError for a state that does not fit; all name the file.
TrainingProgress load_training_state(const std::filesystem::path& path, Optimizer& optimizer,
                                     const NamedGenerators& generators);

}  // namespace dscope::optim
