#include "crypto/key_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "crypto/random.h"

namespace residency::crypto {
namespace {

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  return absl::InternalError(
      absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// Makes a newly created file's directory entry durable.
absl::Status SyncParentDirectory(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open directory", dir);
  const bool ok = ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  errno = saved;
  return ok ? absl::OkStatus() : ErrnoError("cannot sync directory", dir);
}

absl::StatusOr<SecretBytes> CreateKeyFile(const std::string& path,
                                          const KeyFileOptions& options) {
  absl::StatusOr<SecretBytes> fresh = RandomSecret(options.size);
  if (!fresh.ok()) return fresh.status();
  const int fd =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return ErrnoError(absl::StrCat("cannot create ", options.what, " file"),
                      path);
  }
  // The mode passed to open is filtered by the umask; make it exact.
  const bool ok = ::fchmod(fd, 0600) == 0 &&
                  ::write(fd, fresh->data(), fresh->size()) ==
                      static_cast<ssize_t>(fresh->size()) &&
                  ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    errno = saved;
    return ErrnoError(absl::StrCat("cannot write ", options.what, " file"),
                      path);
  }
  if (absl::Status s = SyncParentDirectory(path); !s.ok()) {
    ::unlink(path.c_str());
    return s;
  }
  return *std::move(fresh);
}

}  // namespace

absl::StatusOr<SecretBytes> LoadOrCreateKeyFile(const std::string& path,
                                                const KeyFileOptions& options) {
  const std::string& what = options.what;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT) {
    if (!options.create_if_missing) {
      return absl::NotFoundError(
          absl::StrCat(what, " file ", path, " does not exist"));
    }
    return CreateKeyFile(path, options);
  }
  if (fd < 0)
    return ErrnoError(absl::StrCat("cannot open ", what, " file"), path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return ErrnoError(absl::StrCat("cannot stat ", what, " file"), path);
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s file %s has mode %04o: group or others may access it; "
        "refusing to use it (chmod 600 it, and consider the key exposed)",
        what, path, st.st_mode & 07777));
  }
  if (st.st_uid != ::geteuid()) {
    ::close(fd);
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s file %s belongs to uid %d, not to this process (uid %d); "
        "refusing to use it",
        what, path, static_cast<int>(st.st_uid),
        static_cast<int>(::geteuid())));
  }
  if (!S_ISREG(st.st_mode) || st.st_size != static_cast<off_t>(options.size)) {
    ::close(fd);
    return absl::DataLossError(absl::StrCat(
        what, " file ", path, " must be a regular file of exactly ",
        options.size, " bytes, found ", st.st_size));
  }
  SecretBytes key(options.size);
  const ssize_t n = ::read(fd, key.mutable_data(), key.size());
  const int saved = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(options.size)) {
    errno = saved;
    return ErrnoError(absl::StrCat("cannot read ", what, " file"), path);
  }
  return key;
}

}  // namespace residency::crypto
