// Generator: a seeded source of random numbers whose sequence is the same on every machine and compiler.
//
// The standard library's distributions are implementation-defined (libstdc++ and libc++ give different
// normals from the same seed), so we draw raw 64-bit words from xoshiro256** seeded through splitmix64 and
// turn them into floats ourselves: uniform from the top 24 bits, normal by the Box-Muller transform.
#pragma once

#include <array>
#include <cstdint>

namespace dscope {

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) { reseed(seed); }
  void reseed(std::uint64_t seed);

  std::uint64_t next_u64();
  float uniform();                           // in [0, 1)
  float normal();                            // mean 0, standard deviation 1
  std::uint64_t below(std::uint64_t bound);  // uniform integer in [0, bound), without modulo bias
  std::uint64_t seed() const { return seed_; }

  // Everything that determines the rest of the sequence (the seed alone does not, once numbers have been
  // drawn), so a training run can be saved and resumed exactly.
  struct State {
    std::array<std::uint64_t, 4> words{};
    std::uint64_t seed = 0;
    float spare_normal = 0.0f;
    bool has_spare_normal = false;
  };
  State state() const;
  void set_state(const State& snapshot);

 private:
  std::uint64_t state_[4];
  std::uint64_t seed_ = 0;
  float spare_normal_ = 0.0f;  // Box-Muller makes normals in pairs; the second waits here
  bool has_spare_normal_ = false;
};

// The process-wide generator used when an op is not given one (dropout, random fills in demos).
Generator& default_generator();
void manual_seed(std::uint64_t seed);

}  // namespace dscope
