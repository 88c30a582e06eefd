#ifndef RESIDENCY_CLIENT_PROGRESS_H_
#define RESIDENCY_CLIENT_PROGRESS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/client.h"

namespace residency::client {

// One progress line for many concurrent transfers, drawn in place on a
// terminal ("\r" and erase-to-end-of-line):
//
//   12.0 MiB / 40.0 MiB  30% [######              ]  45.1 MiB/s  ETA 0:01  3/10
//   files
//
// Each transfer reports through its own ProgressFn (Track()); the meter adds
// them up, so transfers may report concurrently. The line is redrawn at most
// once per `min_interval`. Messages printed through Print() erase the line
// first and redraw it after, so they are never garbled by it.
//
// A disabled meter draws nothing; Print() still writes the message, so
// callers need not check.
//
// Thread safety: every method may be called from any thread.
class ProgressMeter {
 public:
  struct Options {
    bool enabled = false;
    absl::Duration min_interval = absl::Milliseconds(100);
    // Characters between the brackets.
    int bar_width = 20;
    // For tests.
    std::function<absl::Time()> clock = [] { return absl::Now(); };
  };

  // `terminal` receives the line (stderr); it must outlive the meter.
  ProgressMeter(std::ostream& terminal, Options options);
  ProgressMeter(const ProgressMeter&) = delete;
  ProgressMeter& operator=(const ProgressMeter&) = delete;

  bool enabled() const { return options_.enabled; }

  // Adds to the expected totals shown after the slash.
  void Expect(uint64_t bytes, size_t files);

  // A ProgressFn for one transfer, reporting that transfer's bytes so far.
  // Calls of one returned function must not overlap (a transfer runs on one
  // thread); a value below the previous one (a retried Get starting over)
  // takes the difference back.
  ProgressFn Track();

  // Counts one file as finished (stored, fetched, or failed: it is no longer
  // pending). A failed one's bytes stay counted as done.
  void FileFinished();

  // Writes `line` and a newline to `stream` (stdout or stderr) without
  // garbling the progress line.
  void Print(std::ostream& stream, absl::string_view line);

  // Draws the final state and ends the line with a newline, if anything was
  // drawn. Further progress is not drawn.
  void Finish();

  // The text of the line, without control characters; `elapsed` is the time
  // since the first byte (under half a second: no rate or ETA yet, unless
  // done).
  static std::string Render(uint64_t done, uint64_t total, size_t files_done,
                            size_t files_total, absl::Duration elapsed,
                            int bar_width);

 private:
  void Add(int64_t delta);
  void DrawLocked(bool force) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::ostream& terminal_;
  const Options options_;

  absl::Mutex mu_;
  uint64_t done_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t total_ ABSL_GUARDED_BY(mu_) = 0;
  size_t files_done_ ABSL_GUARDED_BY(mu_) = 0;
  size_t files_total_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<absl::Time> started_ ABSL_GUARDED_BY(mu_);
  absl::Time last_draw_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool drawn_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

// "0 B", "1023 B", "1.5 KiB", "3.0 MiB", "2.00 GiB".
std::string HumanBytes(uint64_t bytes);

}  // namespace residency::client

#endif  // RESIDENCY_CLIENT_PROGRESS_H_
