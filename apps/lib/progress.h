// Progress: a progress bar with throughput and ETA for long work.
//
// On a terminal it redraws one line in place ("\r"), at most ten times a second:
//   epoch 3/20 [##########··········] 45/90  loss 0.5321  812 img/s  ETA 0:06
// When the output is not a terminal (a log file, CI) it prints a plain line at every tenth of the work
// instead, so logs stay readable and short.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace dscope::apps {

class Progress {
 public:
  // `total` units of work (batches, images); `label` starts the line; `stream` is usually stderr.
  Progress(std::string label, std::int64_t total, std::FILE* stream = stderr);
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  // Marks `done` units finished; `items` is what the throughput counts (e.g. images so far);
  // `detail` is appended (e.g. the running loss).
  void update(std::int64_t done, std::int64_t items, const std::string& detail = "");
  // Draws the final state and ends the line.
  void finish(const std::string& detail = "");
  double elapsed_seconds() const;

  // Formats seconds as m:ss or h:mm:ss.
  static std::string format_duration(double seconds);

 private:
  void draw(const std::string& detail, bool final_line);

  std::string label_;
  std::int64_t total_;
  std::FILE* stream_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  std::int64_t done_ = 0, items_ = 0, next_plain_line_ = 0;
};

}  // namespace dscope::apps
