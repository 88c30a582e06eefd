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

 protected:
  // Seekable, as a file is: a Put can then start over from the same bytes.
  pos_type seekoff(off_type off, std::ios_base::seekdir dir,
                   std::ios_base::openmode which) override {
    if ((which & std::ios_base::in) == 0) return pos_type(off_type(-1));
    off_type base = dir == std::ios_base::beg   ? 0
                    : dir == std::ios_base::cur ? gptr() - eback()
                                                : egptr() - eback();
    const off_type target = base + off;
    if (target < 0 || target > egptr() - eback()) return pos_type(off_type(-1));
    setg(eback(), eback() + target, egptr());
    return pos_type(target);
  }
  pos_type seekpos(pos_type pos, std::ios_base::openmode which) override {
    return seekoff(off_type(pos), std::ios_base::beg, which);
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
