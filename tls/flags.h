#ifndef RESIDENCY_TLS_FLAGS_H_
#define RESIDENCY_TLS_FLAGS_H_

#include <string>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tls/credentials.h"

// The certificate flags every residency binary takes:
//   --tls_ca    PEM CA certificate that peers' certificates must chain to
//   --tls_cert  PEM certificate of this process (a residency:// URI SAN)
//   --tls_key   PEM private key of --tls_cert, mode 0600
ABSL_DECLARE_FLAG(std::string, tls_ca);
ABSL_DECLARE_FLAG(std::string, tls_cert);
ABSL_DECLARE_FLAG(std::string, tls_key);

namespace residency::tls {

// INVALID_ARGUMENT naming the first of the three flags that is empty;
// otherwise LoadTlsMaterial of the files they name.
absl::StatusOr<TlsMaterial> LoadTlsMaterialFromFlags();

// Makes --help list the flags of `main_file` (pass __FILE__ from main) and
// the TLS flags; call before absl::ParseCommandLine.
void HelpShowsTlsFlags(absl::string_view main_file);

// "--tls_ca" etc. when that flag is empty, else "" (for usage errors
// reported before anything else starts).
std::string MissingTlsFlag();

}  // namespace residency::tls

#endif  // RESIDENCY_TLS_FLAGS_H_
