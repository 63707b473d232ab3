#include "tensor/random.h"

#include <cmath>
#include <numbers>

namespace dscope {
namespace {

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t rotate_left(std::uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

}  // namespace

void Generator::reseed(std::uint64_t seed) {
  seed_ = seed;
  std::uint64_t mixer = seed;
  for (std::uint64_t& word : state_)
    word = splitmix64(mixer);
  has_spare_normal_ = false;
}

Generator::State Generator::state() const {
  State snapshot;
  for (std::size_t i = 0; i < 4; ++i)
    snapshot.words[i] = state_[i];
  snapshot.seed = seed_;
  snapshot.spare_normal = spare_normal_;
  snapshot.has_spare_normal = has_spare_normal_;
  return snapshot;
}

void Generator::set_state(const State& snapshot) {
  for (std::size_t i = 0; i < 4; ++i)
    state_[i] = snapshot.words[i];
  seed_ = snapshot.seed;
  spare_normal_ = snapshot.spare_normal;
  has_spare_normal_ = snapshot.has_spare_normal;
}

std::uint64_t Generator::next_u64() {  // xoshiro256**
  const std::uint64_t result = rotate_left(state_[1] * 5, 7) * 9;
  const std::uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = rotate_left(state_[3], 45);
  return result;
}

float Generator::uniform() {
  // The top 24 bits fill a float's mantissa exactly, so every value is a multiple of 2^-24 in [0, 1).
  return static_cast<float>(next_u64() >> 40) * (1.0f / 16777216.0f);
}

float Generator::normal() {
  if (has_spare_normal_) {
    has_spare_normal_ = false;
    return spare_normal_;
  }
  // Box-Muller in double; u1 is kept away from 0 so the logarithm is finite.
  const double u1 = (static_cast<double>(next_u64() >> 11) + 1.0) * (1.0 / 9007199254740993.0);
  const double u2 = static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0);
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double angle = 2.0 * std::numbers::pi * u2;
  spare_normal_ = static_cast<float>(radius * std::sin(angle));
  has_spare_normal_ = true;
  return static_cast<float>(radius * std::cos(angle));
}

std::uint64_t Generator::below(std::uint64_t bound) {
  // Rejection sampling: drop the top partial copy of [0, bound) so every residue is equally likely.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  std::uint64_t value = next_u64();
  while (value >= limit)
    value = next_u64();
  return value % bound;
}

Generator& default_generator() {
  static Generator generator(0);
  return generator;
}

void manual_seed(std::uint64_t seed) {
  default_generator().reseed(seed);
}

}  // namespace dscope
