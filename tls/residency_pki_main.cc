// residency_pki: mints a throwaway CA and one certificate per principal, as
// PEM files for key_service, storage_node and the CLI to load by flag.
//
//   residency_pki --dir=certs ks=residency://service/us-custodian
//       alice=residency://user/alice ops=residency://operator/us-ops
//
// writes certs/ca.crt, and certs/STEM.crt and certs/STEM.key (mode 0600) for
// each STEM=PRINCIPAL argument. The CA's private key is never written: a new
// run makes a new CA, so mint every identity a deployment needs in one run.
// Exit codes: 0 done, 1 a file could not be written, 2 usage errors.
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tls/pki.h"
#include "tls/principal.h"

ABSL_FLAG(std::string, dir, "", "output directory (created if missing)");
ABSL_FLAG(std::string, ca_name, "residency throwaway CA",
          "common name of the CA");
ABSL_FLAG(int64_t, validity_days, 7,
          "days the CA and the certificates stay valid");

namespace {

int Usage(const std::string& message) {
  std::fprintf(stderr, "residency_pki: %s\nRun residency_pki --help.\n",
               message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "mints a throwaway CA and certificates with residency:// URI SANs.\n\n"
      "  residency_pki --dir=DIR STEM=PRINCIPAL [STEM=PRINCIPAL...]\n\n"
      "PRINCIPAL is residency://user/NAME, residency://operator/NAME,\n"
      "residency://authority/JURISDICTION or residency://service/NAME.\n"
      "Writes DIR/ca.crt and DIR/STEM.crt, DIR/STEM.key (mode 0600).");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  const std::string dir = absl::GetFlag(FLAGS_dir);
  if (dir.empty()) return Usage("--dir is required");
  if (args.size() < 2) return Usage("name at least one STEM=PRINCIPAL");
  const int64_t days = absl::GetFlag(FLAGS_validity_days);
  if (days < 1 || days > 3650) {
    return Usage("--validity_days must be between 1 and 3650");
  }
  std::vector<std::pair<std::string, std::string>> wanted;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string arg = args[i];
    const size_t eq = arg.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Usage(absl::StrCat("'", arg, "' is not STEM=PRINCIPAL"));
    }
    const std::string principal = arg.substr(eq + 1);
    if (absl::Status s = residency::tls::ParsePrincipal(principal).status();
        !s.ok()) {
      return Usage(absl::StrCat("'", arg, "': ", s.message()));
    }
    wanted.emplace_back(arg.substr(0, eq), principal);
  }
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    std::fprintf(stderr, "residency_pki: cannot create %s: %s\n", dir.c_str(),
                 std::strerror(errno));
    return 1;
  }
  // Certificates end a little before the CA does.
  absl::StatusOr<residency::tls::CertificateAuthority> ca =
      residency::tls::CertificateAuthority::Create(absl::GetFlag(FLAGS_ca_name),
                                                   absl::Hours(24 * days + 1));
  if (!ca.ok()) {
    std::fprintf(stderr, "residency_pki: %s\n", ca.status().ToString().c_str());
    return 1;
  }
  for (const auto& [stem, principal] : wanted) {
    residency::tls::IssueOptions options;
    options.validity = absl::Hours(24 * days);
    absl::StatusOr<residency::tls::Identity> identity =
        ca->Issue(principal, options);
    absl::Status written =
        identity.ok() ? identity->WriteFiles(dir, stem) : identity.status();
    if (!written.ok()) {
      std::fprintf(stderr, "residency_pki: %s: %s\n", stem.c_str(),
                   std::string(written.message()).c_str());
      return written.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
    }
    std::printf("%s/%s.crt  %s\n", dir.c_str(), stem.c_str(),
                principal.c_str());
  }
  std::printf("%s/ca.crt  CA \"%s\", valid %lld days\n", dir.c_str(),
              absl::GetFlag(FLAGS_ca_name).c_str(),
              static_cast<long long>(days));
  return 0;
}
