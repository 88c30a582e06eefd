#include "tls/flags.h"

#include "absl/flags/flag.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA certificate that peer certificates must chain to "
          "(required)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate of this process, with its residency:// URI SAN "
          "(required)");
ABSL_FLAG(std::string, tls_key, "",
          "PEM private key of --tls_cert, mode 0600 (required)");

namespace residency::tls {

void HelpShowsTlsFlags(absl::string_view main_file) {
  static std::string* const main = new std::string();
  *main = std::string(main_file);
  absl::FlagsUsageConfig config;
  config.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(*main, file) || absl::EndsWith(file, "tls/flags.cc");
  };
  config.contains_helpshort_flags = config.contains_help_flags;
  absl::SetFlagsUsageConfig(config);
}

std::string MissingTlsFlag() {
  if (absl::GetFlag(FLAGS_tls_ca).empty()) return "--tls_ca";
  if (absl::GetFlag(FLAGS_tls_cert).empty()) return "--tls_cert";
  if (absl::GetFlag(FLAGS_tls_key).empty()) return "--tls_key";
  return "";
}

absl::StatusOr<TlsMaterial> LoadTlsMaterialFromFlags() {
  if (const std::string missing = MissingTlsFlag(); !missing.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(missing, " is required"));
  }
  return LoadTlsMaterial(absl::GetFlag(FLAGS_tls_ca),
                         absl::GetFlag(FLAGS_tls_cert),
                         absl::GetFlag(FLAGS_tls_key));
}

}  // namespace residency::tls
