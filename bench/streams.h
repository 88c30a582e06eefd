#ifndef RESIDENCY_BENCH_STREAMS_H_
#define RESIDENCY_BENCH_STREAMS_H_

#include <cstdint>
#include <streambuf>

#include "absl/strings/string_view.h"

namespace residency::bench {

// An istream source over bytes that stay put, without the copy that
// std::istringstream makes of its string.
class MemoryBuf : public std::streambuf {
 public:
  explicit MemoryBuf(absl::string_view bytes) {
    char* begin = const_cast<char*>(bytes.data());
    setg(begin, begin, begin + bytes.size());
  }
};

// An ostream sink that only counts what it is given.
class CountingBuf : public std::streambuf {
 public:
  uint64_t count() const { return count_; }

 protected:
  std::streamsize xsputn(const char*, std::streamsize n) override {
    count_ += static_cast<uint64_t>(n);
    return n;
  }
  int_type overflow(int_type c) override {
    if (!traits_type::eq_int_type(c, traits_type::eof())) ++count_;
    return traits_type::not_eof(c);
  }

 private:
  uint64_t count_ = 0;
};

}  // namespace residency::bench

#endif  // RESIDENCY_BENCH_STREAMS_H_
