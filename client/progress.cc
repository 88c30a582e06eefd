#include "client/progress.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace residency::client {
namespace {

// Erases the current terminal line: carriage return, then ANSI "erase to
// end of line".
constexpr char kEraseLine[] = "\r\x1b[K";

std::string Clock(absl::Duration d) {
  const int64_t seconds = absl::ToInt64Seconds(d);
  if (seconds >= 3600) {
    return absl::StrFormat("%d:%02d:%02d", seconds / 3600, seconds / 60 % 60,
                           seconds % 60);
  }
  return absl::StrFormat("%d:%02d", seconds / 60, seconds % 60);
}

}  // namespace

std::string HumanBytes(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  const double b = static_cast<double>(bytes);
  if (bytes < (uint64_t{1} << 20)) return absl::StrFormat("%.1f KiB", b / 1024);
  if (bytes < (uint64_t{1} << 30)) {
    return absl::StrFormat("%.1f MiB", b / (1 << 20));
  }
  return absl::StrFormat("%.2f GiB", b / (1 << 30));
}

ProgressMeter::ProgressMeter(std::ostream& terminal, Options options)
    : terminal_(terminal), options_(std::move(options)) {}

void ProgressMeter::Expect(uint64_t bytes, size_t files) {
  absl::MutexLock lock(&mu_);
  total_ += bytes;
  files_total_ += files;
}

ProgressFn ProgressMeter::Track() {
  auto last = std::make_shared<uint64_t>(0);
  return [this, last](uint64_t bytes_done) {
    const int64_t delta =
        static_cast<int64_t>(bytes_done) - static_cast<int64_t>(*last);
    *last = bytes_done;
    Add(delta);
  };
}

void ProgressMeter::Add(int64_t delta) {
  absl::MutexLock lock(&mu_);
  if (delta < 0 && static_cast<uint64_t>(-delta) > done_) {
    done_ = 0;
  } else {
    done_ = static_cast<uint64_t>(static_cast<int64_t>(done_) + delta);
  }
  if (!started_.has_value()) started_ = options_.clock();
  DrawLocked(/*force=*/false);
}

void ProgressMeter::FileFinished() {
  absl::MutexLock lock(&mu_);
  ++files_done_;
  DrawLocked(/*force=*/false);
}

void ProgressMeter::Print(std::ostream& stream, absl::string_view line) {
  absl::MutexLock lock(&mu_);
  const bool redraw = drawn_ && !finished_;
  EraseLocked();
  stream << line << '\n';
  stream.flush();
  if (redraw) DrawLocked(/*force=*/true);
}

void ProgressMeter::Finish() {
  absl::MutexLock lock(&mu_);
  if (finished_) return;
  if (drawn_ || (options_.enabled && started_.has_value())) {
    DrawLocked(/*force=*/true);
    terminal_ << '\n';
    terminal_.flush();
  }
  finished_ = true;
}

void ProgressMeter::EraseLocked() {
  if (!drawn_ || finished_) return;
  terminal_ << kEraseLine;
  terminal_.flush();
  drawn_ = false;
}

void ProgressMeter::DrawLocked(bool force) {
  if (!options_.enabled || finished_) return;
  const absl::Time now = options_.clock();
  if (!force && now - last_draw_ < options_.min_interval) return;
  last_draw_ = now;
  const absl::Duration elapsed =
      started_.has_value() ? now - *started_ : absl::ZeroDuration();
  terminal_ << kEraseLine
            << Render(done_, std::max(total_, done_), files_done_, files_total_,
                      elapsed, options_.bar_width);
  terminal_.flush();
  drawn_ = true;
}

std::string ProgressMeter::Render(uint64_t done, uint64_t total,
                                  size_t files_done, size_t files_total,
                                  absl::Duration elapsed, int bar_width) {
  std::string line = HumanBytes(done);
  if (total > 0) {
    const double fraction =
        std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
    const int filled = static_cast<int>(std::floor(fraction * bar_width));
    absl::StrAppendFormat(&line, " / %s %3d%% [%s%s]", HumanBytes(total),
                          static_cast<int>(std::floor(fraction * 100)),
                          std::string(filled, '#'),
                          std::string(bar_width - filled, ' '));
  }
  // A rate measured over less than half a second is mostly noise, until
  // the end, when it is the average.
  const double seconds = absl::ToDoubleSeconds(elapsed);
  if (done > 0 && (seconds >= 0.5 || (done >= total && seconds > 0))) {
    const double rate = static_cast<double>(done) / seconds;
    absl::StrAppendFormat(&line, "  %.1f MiB/s", rate / (1 << 20));
    if (total > done) {
      absl::StrAppend(&line, "  ETA ",
                      Clock(absl::Seconds(std::ceil(
                          static_cast<double>(total - done) / rate))));
    }
  }
  if (files_total > 1) {
    absl::StrAppend(&line, "  ", files_done, "/", files_total, " files");
  }
  return line;
}

}  // namespace residency::client
