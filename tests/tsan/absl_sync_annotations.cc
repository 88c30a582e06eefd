// ThreadSanitizer annotations for Debian's Abseil synchronization library.
//
// Debian builds libabsl_synchronization without -fsanitize=thread, so TSan
// cannot see that absl::Mutex, CondVar, Notification, BlockingCounter and
// Barrier order memory: every access guarded by an absl::Mutex would be
// reported as a race. This file, linked into every executable of the tsan
// preset (RESIDENCY_TSAN_ABSL), defines those entry points itself. Each
// forwards to the library's definition (dlsym RTLD_NEXT) and tells TSan what
// it did: a release on the object before the call gives up the lock (or
// signals), an acquire after the call takes it (or wakes up). Definitions in
// the executable take precedence over the shared library's, also for calls
// made from inside Debian's gRPC, which locks with absl::Mutex too.
//
// The symbol names are those of Abseil 20220623 as Debian 12 builds it
// (inline namespace absl::debian3); a missing one aborts at first use.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>

#include "absl/time/time.h"

namespace {

void* Real(const char* name) {
  void* f = dlsym(RTLD_NEXT, name);
  if (f == nullptr) {
    std::fprintf(stderr, "absl_sync_annotations: %s not found: %s\n", name,
                 dlerror());
    std::abort();
  }
  return f;
}

// The mutex whose conditions this thread may evaluate inside the library:
// its own in Await and LockWhen, and its waiters' in Unlock, which hands
// the lock to a waiter whose condition now holds. Both happen with the lock
// held but between the annotations around the call (the release before it,
// the acquire after it), so ShimConditionEval acquires before the
// evaluation and releases after it: the condition's reads are then ordered
// with the writes other threads make under the lock.
thread_local void* waiting_on = nullptr;

class Waiting {
 public:
  explicit Waiting(void* mu) : previous_(waiting_on) { waiting_on = mu; }
  ~Waiting() { waiting_on = previous_; }
  Waiting(const Waiting&) = delete;
  Waiting& operator=(const Waiting&) = delete;

 private:
  void* const previous_;
};

}  // namespace

// Declares `name` under the mangled symbol `sym` and defines it as: resolve
// the library's function once, then run `body`, in which `real` is it.
#define RESIDENCY_SHIM(ret, name, sym, params) \
  extern "C" ret name params __asm__(sym);     \
  extern "C" ret name params

using Condition = void;

// Lock / unlock.
RESIDENCY_SHIM(void, ShimLock, "_ZN4absl7debian35Mutex4LockEv", (void* mu)) {
  static auto* real =
      reinterpret_cast<void (*)(void*)>(Real("_ZN4absl7debian35Mutex4LockEv"));
  real(mu);
  __tsan_acquire(mu);
}

RESIDENCY_SHIM(void, ShimReaderLock, "_ZN4absl7debian35Mutex10ReaderLockEv",
               (void* mu)) {
  static auto* real = reinterpret_cast<void (*)(void*)>(
      Real("_ZN4absl7debian35Mutex10ReaderLockEv"));
  real(mu);
  __tsan_acquire(mu);
}

RESIDENCY_SHIM(bool, ShimTryLock, "_ZN4absl7debian35Mutex7TryLockEv",
               (void* mu)) {
  static auto* real = reinterpret_cast<bool (*)(void*)>(
      Real("_ZN4absl7debian35Mutex7TryLockEv"));
  const bool locked = real(mu);
  if (locked) __tsan_acquire(mu);
  return locked;
}

RESIDENCY_SHIM(bool, ShimReaderTryLock,
               "_ZN4absl7debian35Mutex13ReaderTryLockEv", (void* mu)) {
  static auto* real = reinterpret_cast<bool (*)(void*)>(
      Real("_ZN4absl7debian35Mutex13ReaderTryLockEv"));
  const bool locked = real(mu);
  if (locked) __tsan_acquire(mu);
  return locked;
}

RESIDENCY_SHIM(void, ShimUnlock, "_ZN4absl7debian35Mutex6UnlockEv",
               (void* mu)) {
  static auto* real = reinterpret_cast<void (*)(void*)>(
      Real("_ZN4absl7debian35Mutex6UnlockEv"));
  __tsan_release(mu);
  const Waiting waiting(mu);  // Unlock evaluates waiters' conditions
  real(mu);
}

RESIDENCY_SHIM(void, ShimReaderUnlock, "_ZN4absl7debian35Mutex12ReaderUnlockEv",
               (void* mu)) {
  static auto* real = reinterpret_cast<void (*)(void*)>(
      Real("_ZN4absl7debian35Mutex12ReaderUnlockEv"));
  __tsan_release(mu);
  const Waiting waiting(mu);  // Unlock evaluates waiters' conditions
  real(mu);
}

// Lock when a condition holds: the lock is held on return, whatever the
// result of the timed forms.
RESIDENCY_SHIM(void, ShimLockWhen,
               "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE",
               (void* mu, const Condition* cond)) {
  static auto* real = reinterpret_cast<void (*)(void*, const Condition*)>(
      Real("_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE"));
  const Waiting waiting(mu);
  real(mu, cond);
  __tsan_acquire(mu);
}

RESIDENCY_SHIM(void, ShimReaderLockWhen,
               "_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE",
               (void* mu, const Condition* cond)) {
  static auto* real = reinterpret_cast<void (*)(void*, const Condition*)>(
      Real("_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE"));
  const Waiting waiting(mu);
  real(mu, cond);
  __tsan_acquire(mu);
}

RESIDENCY_SHIM(
    bool, ShimLockWhenWithTimeout,
    "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_"
    "8DurationE",
    (void* mu, const Condition* cond, absl::Duration timeout)) {
  static auto* real =
      reinterpret_cast<bool (*)(void*, const Condition*, absl::Duration)>(
          Real("_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_"
               "9ConditionENS0_8DurationE"));
  const Waiting waiting(mu);
  const bool met = real(mu, cond, timeout);
  __tsan_acquire(mu);
  return met;
}

RESIDENCY_SHIM(bool, ShimLockWhenWithDeadline,
               "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_"
               "9ConditionENS0_4TimeE",
               (void* mu, const Condition* cond, absl::Time deadline)) {
  static auto* real =
      reinterpret_cast<bool (*)(void*, const Condition*, absl::Time)>(
          Real("_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_"
               "9ConditionENS0_4TimeE"));
  const Waiting waiting(mu);
  const bool met = real(mu, cond, deadline);
  __tsan_acquire(mu);
  return met;
}

RESIDENCY_SHIM(bool, ShimReaderLockWhenWithTimeout,
               "_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_"
               "9ConditionENS0_8DurationE",
               (void* mu, const Condition* cond, absl::Duration timeout)) {
  static auto* real =
      reinterpret_cast<bool (*)(void*, const Condition*, absl::Duration)>(
          Real("_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_"
               "9ConditionENS0_8DurationE"));
  const Waiting waiting(mu);
  const bool met = real(mu, cond, timeout);
  __tsan_acquire(mu);
  return met;
}

RESIDENCY_SHIM(bool, ShimReaderLockWhenWithDeadline,
               "_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_"
               "9ConditionENS0_4TimeE",
               (void* mu, const Condition* cond, absl::Time deadline)) {
  static auto* real =
      reinterpret_cast<bool (*)(void*, const Condition*, absl::Time)>(
          Real("_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_"
               "9ConditionENS0_4TimeE"));
  const Waiting waiting(mu);
  const bool met = real(mu, cond, deadline);
  __tsan_acquire(mu);
  return met;
}

// Await: gives the lock up while waiting and holds it again on return.
RESIDENCY_SHIM(void, ShimAwait,
               "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE",
               (void* mu, const Condition* cond)) {
  static auto* real = reinterpret_cast<void (*)(void*, const Condition*)>(
      Real("_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE"));
  __tsan_release(mu);
  const Waiting waiting(mu);
  real(mu, cond);
  __tsan_acquire(mu);
}

RESIDENCY_SHIM(bool, ShimAwaitWithTimeout,
               "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_"
               "8DurationE",
               (void* mu, const Condition* cond, absl::Duration timeout)) {
  static auto* real =
      reinterpret_cast<bool (*)(void*, const Condition*, absl::Duration)>(
          Real("_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_"
               "9ConditionENS0_8DurationE"));
  __tsan_release(mu);
  const Waiting waiting(mu);
  const bool met = real(mu, cond, timeout);
  __tsan_acquire(mu);
  return met;
}

RESIDENCY_SHIM(bool, ShimAwaitWithDeadline,
               "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_"
               "4TimeE",
               (void* mu, const Condition* cond, absl::Time deadline)) {
  static auto* real =
      reinterpret_cast<bool (*)(void*, const Condition*, absl::Time)>(
          Real("_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_"
               "9ConditionENS0_4TimeE"));
  __tsan_release(mu);
  const Waiting waiting(mu);
  const bool met = real(mu, cond, deadline);
  __tsan_acquire(mu);
  return met;
}

// Condition evaluation inside Await and LockWhen (see Waiting).
RESIDENCY_SHIM(bool, ShimConditionEval, "_ZNK4absl7debian39Condition4EvalEv",
               (const Condition* cond)) {
  static auto* real = reinterpret_cast<bool (*)(const Condition*)>(
      Real("_ZNK4absl7debian39Condition4EvalEv"));
  void* const mu = waiting_on;
  if (mu == nullptr) return real(cond);
  // Evaluated with the lock held; when false, the waiter gives the lock up
  // again inside the library.
  __tsan_acquire(mu);
  const bool met = real(cond);
  __tsan_release(mu);
  return met;
}

// CondVar waits give the mutex up and take it again.
RESIDENCY_SHIM(void, ShimCondVarWait,
               "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE",
               (void* cv, void* mu)) {
  static auto* real = reinterpret_cast<void (*)(void*, void*)>(
      Real("_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE"));
  __tsan_release(mu);
  real(cv, mu);
  __tsan_acquire(mu);
}

RESIDENCY_SHIM(bool, ShimCondVarWaitWithTimeout,
               "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_"
               "8DurationE",
               (void* cv, void* mu, absl::Duration timeout)) {
  static auto* real = reinterpret_cast<bool (*)(void*, void*, absl::Duration)>(
      Real("_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_"
           "8DurationE"));
  __tsan_release(mu);
  const bool timed_out = real(cv, mu, timeout);
  __tsan_acquire(mu);
  return timed_out;
}

RESIDENCY_SHIM(bool, ShimCondVarWaitWithDeadline,
               "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_"
               "4TimeE",
               (void* cv, void* mu, absl::Time deadline)) {
  static auto* real = reinterpret_cast<bool (*)(void*, void*, absl::Time)>(
      Real("_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_"
           "4TimeE"));
  __tsan_release(mu);
  const bool timed_out = real(cv, mu, deadline);
  __tsan_acquire(mu);
  return timed_out;
}

// Notification: Notify releases, a wait that saw the notification acquires.
RESIDENCY_SHIM(void, ShimNotify, "_ZN4absl7debian312Notification6NotifyEv",
               (void* n)) {
  static auto* real = reinterpret_cast<void (*)(void*)>(
      Real("_ZN4absl7debian312Notification6NotifyEv"));
  __tsan_release(n);
  real(n);
}

RESIDENCY_SHIM(void, ShimWaitForNotification,
               "_ZNK4absl7debian312Notification19WaitForNotificationEv",
               (const void* n)) {
  static auto* real = reinterpret_cast<void (*)(const void*)>(
      Real("_ZNK4absl7debian312Notification19WaitForNotificationEv"));
  real(n);
  __tsan_acquire(const_cast<void*>(n));
}

RESIDENCY_SHIM(bool, ShimWaitForNotificationWithTimeout,
               "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeout"
               "ENS0_8DurationE",
               (const void* n, absl::Duration timeout)) {
  static auto* real = reinterpret_cast<bool (*)(const void*, absl::Duration)>(
      Real("_ZNK4absl7debian312Notification30WaitForNotificationWithTimeout"
           "ENS0_8DurationE"));
  const bool notified = real(n, timeout);
  if (notified) __tsan_acquire(const_cast<void*>(n));
  return notified;
}

RESIDENCY_SHIM(
    bool, ShimWaitForNotificationWithDeadline,
    "_ZNK4absl7debian312Notification31WaitForNotificationWithDeadline"
    "ENS0_4TimeE",
    (const void* n, absl::Time deadline)) {
  static auto* real = reinterpret_cast<bool (*)(const void*, absl::Time)>(
      Real("_ZNK4absl7debian312Notification31WaitForNotificationWithDeadline"
           "ENS0_4TimeE"));
  const bool notified = real(n, deadline);
  if (notified) __tsan_acquire(const_cast<void*>(n));
  return notified;
}

// BlockingCounter and Barrier: each arrival releases, the wait acquires.
RESIDENCY_SHIM(bool, ShimDecrementCount,
               "_ZN4absl7debian315BlockingCounter14DecrementCountEv",
               (void* counter)) {
  static auto* real = reinterpret_cast<bool (*)(void*)>(
      Real("_ZN4absl7debian315BlockingCounter14DecrementCountEv"));
  __tsan_release(counter);
  return real(counter);
}

RESIDENCY_SHIM(void, ShimBlockingCounterWait,
               "_ZN4absl7debian315BlockingCounter4WaitEv", (void* counter)) {
  static auto* real = reinterpret_cast<void (*)(void*)>(
      Real("_ZN4absl7debian315BlockingCounter4WaitEv"));
  real(counter);
  __tsan_acquire(counter);
}

RESIDENCY_SHIM(bool, ShimBarrierBlock, "_ZN4absl7debian37Barrier5BlockEv",
               (void* barrier)) {
  static auto* real = reinterpret_cast<bool (*)(void*)>(
      Real("_ZN4absl7debian37Barrier5BlockEv"));
  __tsan_release(barrier);
  const bool last = real(barrier);
  __tsan_acquire(barrier);
  return last;
}
