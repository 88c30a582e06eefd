#include "rpc/unknown_flag.h"

#include <algorithm>
#include <iterator>

#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace residency::rpc {

std::string UnknownFlag(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (!absl::StartsWith(arg, "-")) continue;
    arg.remove_prefix(absl::StartsWith(arg, "--") ? 2 : 1);
    absl::string_view name = arg.substr(0, arg.find('='));
    // absl's own flags (--help, --helpfull, --flagfile, ...) are handled by
    // ParseCommandLine and not in the registry.
    static constexpr absl::string_view kAbslFlags[] = {
        "help",     "helpfull",  "helpshort",  "helppackage",
        "helpon",   "helpmatch", "version",    "only_check_args",
        "flagfile", "fromenv",   "tryfromenv", "undefok"};
    if (std::find(std::begin(kAbslFlags), std::end(kAbslFlags), name) !=
        std::end(kAbslFlags)) {
      continue;
    }
    if (absl::FindCommandLineFlag(name) != nullptr) continue;
    if (absl::StartsWith(name, "no") &&
        absl::FindCommandLineFlag(name.substr(2)) != nullptr) {
      continue;
    }
    return std::string(argv[i]);
  }
  return "";
}

}  // namespace residency::rpc
