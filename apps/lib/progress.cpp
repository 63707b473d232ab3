#include "apps/lib/progress.h"

#include <unistd.h>

#include <algorithm>

namespace dscope::apps {

Progress::Progress(std::string label, std::int64_t total, std::FILE* stream)
    : label_(std::move(label)),
      total_(std::max<std::int64_t>(total, 1)),
      stream_(stream),
      terminal_(isatty(fileno(stream)) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string Progress::format_duration(double seconds) {
  const auto total = static_cast<long long>(seconds + 0.5);
  char text[32];
  if (total >= 3600) {
    std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", total / 3600, total / 60 % 60, total % 60);
  } else {
    std::snprintf(text, sizeof text, "%lld:%02lld", total / 60, total % 60);
  }
  return text;
}

void Progress::update(std::int64_t done, std::int64_t items, const std::string& detail) {
  done_ = std::min(done, total_);
  items_ = items;
  const auto now = std::chrono::steady_clock::now();
  if (terminal_) {
    if (now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    draw(detail, false);
  } else if (done_ >= next_plain_line_ && done_ < total_) {  // finish() prints the last line
    next_plain_line_ = done_ + std::max<std::int64_t>(1, total_ / 10);
    draw(detail, true);
  }
}

void Progress::finish(const std::string& detail) {
  done_ = total_;
  draw(detail, true);
}

void Progress::draw(const std::string& detail, bool final_line) {
  constexpr int kWidth = 20;
  const double seconds = elapsed_seconds();
  const double fraction = static_cast<double>(done_) / static_cast<double>(total_);
  const double rate = seconds > 0 ? static_cast<double>(items_) / seconds : 0.0;
  const double remaining = done_ > 0 ? seconds * (1.0 - fraction) / fraction : 0.0;
  std::string bar;
  const int filled = static_cast<int>(fraction * kWidth);
  for (int i = 0; i < kWidth; ++i)
    bar += i < filled ? "#" : ".";
  std::fprintf(stream_, "%s%s [%s] %lld/%lld  %s  %.0f img/s  %s %s%s", terminal_ ? "\r" : "", label_.c_str(),
               bar.c_str(), static_cast<long long>(done_), static_cast<long long>(total_), detail.c_str(),
               rate, done_ == total_ ? "took" : "ETA",
               format_duration(done_ == total_ ? seconds : remaining).c_str(), terminal_ ? "\033[K" : "");
  if (final_line || !terminal_) std::fputc('\n', stream_);
  std::fflush(stream_);
}

}  // namespace dscope::apps
