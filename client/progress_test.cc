#include "client/progress.h"

#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace residency::client {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(HumanBytesTest, PicksTheUnit) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(3 << 20), "3.0 MiB");
  EXPECT_EQ(HumanBytes(uint64_t{5} << 30), "5.00 GiB");
}

TEST(ProgressRenderTest, ShowsBytesPercentRateEtaAndFiles) {
  const std::string line = ProgressMeter::Render(
      /*done=*/10 << 20, /*total=*/40 << 20, /*files_done=*/1,
      /*files_total=*/4, /*elapsed=*/absl::Seconds(2), /*bar_width=*/10);
  EXPECT_EQ(line,
            "10.0 MiB / 40.0 MiB  25% [##        ]  5.0 MiB/s  ETA 0:06  "
            "1/4 files");
}

TEST(ProgressRenderTest, NoRateForTheFirstHalfSecondUnlessDone) {
  EXPECT_EQ(ProgressMeter::Render(10, 100, 0, 1, absl::Milliseconds(100), 4),
            "10 B / 100 B  10% [    ]");
  EXPECT_EQ(
      ProgressMeter::Render(1 << 20, 1 << 20, 1, 1, absl::Milliseconds(100), 4),
      "1.0 MiB / 1.0 MiB 100% [####]  10.0 MiB/s");
}

TEST(ProgressRenderTest, NoRateBeforeTheFirstByteAndNoEtaWhenDone) {
  EXPECT_EQ(ProgressMeter::Render(0, 100, 0, 1, absl::ZeroDuration(), 4),
            "0 B / 100 B   0% [    ]");
  EXPECT_EQ(ProgressMeter::Render(100, 100, 1, 1, absl::Seconds(1), 4),
            "100 B / 100 B 100% [####]  0.0 MiB/s");
}

class FakeClock {
 public:
  absl::Time Now() const { return now_; }
  void Advance(absl::Duration d) { now_ += d; }

 private:
  absl::Time now_ = absl::FromUnixSeconds(1000);
};

TEST(ProgressMeterTest, AddsConcurrentTransfersAndDrawsAtMostTenTimesASecond) {
  std::ostringstream terminal;
  FakeClock clock;
  ProgressMeter meter(terminal,
                      {.enabled = true, .clock = [&] { return clock.Now(); }});
  meter.Expect(/*bytes=*/4000, /*files=*/4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&meter] {
      ProgressFn progress = meter.Track();
      for (uint64_t done = 100; done <= 1000; done += 100) progress(done);
      meter.FileFinished();
    });
  }
  for (std::thread& t : threads) t.join();
  // The clock stood still: only the first update was drawn.
  EXPECT_EQ(terminal.str(),
            "\r\x1b[K100 B / 3.9 KiB   2% [                    ]  0/4 files");
  clock.Advance(absl::Seconds(1));
  meter.Finish();
  EXPECT_THAT(terminal.str(), HasSubstr("3.9 KiB / 3.9 KiB 100%"));
  EXPECT_THAT(terminal.str(), HasSubstr("4/4 files\n"));
}

TEST(ProgressMeterTest, ARetriedTransferTakesItsBytesBack) {
  std::ostringstream terminal;
  FakeClock clock;
  ProgressMeter meter(terminal, {.enabled = true,
                                 .min_interval = absl::ZeroDuration(),
                                 .clock = [&] { return clock.Now(); }});
  meter.Expect(1000, 1);
  ProgressFn progress = meter.Track();
  progress(600);
  progress(0);  // started over
  progress(300);
  clock.Advance(absl::Seconds(1));
  meter.Finish();
  EXPECT_THAT(terminal.str(), HasSubstr("300 B / 1000 B  30%"));
}

TEST(ProgressMeterTest, PrintErasesAndRedrawsTheLine) {
  std::ostringstream terminal;
  std::ostringstream out;
  ProgressMeter meter(terminal, {.enabled = true});
  meter.Expect(100, 1);
  meter.Track()(50);
  meter.Print(out, "stored a");
  EXPECT_EQ(out.str(), "stored a\n");
  // Drawn, erased for the message, drawn again.
  const std::string t = terminal.str();
  EXPECT_EQ(t.find("50 B / 100 B"), t.find("\r\x1b[K") + 4);
  EXPECT_NE(t.rfind("50 B / 100 B"), t.find("50 B / 100 B"));
}

TEST(ProgressMeterTest, ADisabledMeterDrawsNothingButStillPrints) {
  std::ostringstream terminal;
  ProgressMeter meter(terminal, {.enabled = false});
  meter.Expect(100, 2);
  meter.Track()(100);
  meter.Print(terminal, "a message");
  meter.Finish();
  EXPECT_EQ(terminal.str(), "a message\n");
  EXPECT_THAT(terminal.str(), Not(HasSubstr("\r")));
}

}  // namespace
}  // namespace residency::client
