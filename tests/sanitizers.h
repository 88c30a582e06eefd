#ifndef RESIDENCY_TESTS_SANITIZERS_H_
#define RESIDENCY_TESTS_SANITIZERS_H_

// Whether this build runs under a sanitizer (the asan and tsan presets).
// Tests whose expectation a sanitizer changes by design say so with these:
// its allocator keeps freed memory in quarantine and shadow memory, so RSS
// bounds do not hold; their SIGSEGV handlers report the crash and exit
// with a status of their own instead of dying by the signal.
namespace residency::testing {

// The tsan preset undefines __SANITIZE_THREAD__ (Debian's protobuf, built
// without TSan, lays MapFieldBase out without the fields the headers add
// under it) and defines RESIDENCY_TSAN instead.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || \
    defined(RESIDENCY_TSAN)
inline constexpr bool kUnderSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kUnderSanitizer = true;
#else
inline constexpr bool kUnderSanitizer = false;
#endif
#else
inline constexpr bool kUnderSanitizer = false;
#endif

}  // namespace residency::testing

#endif  // RESIDENCY_TESTS_SANITIZERS_H_
