#ifndef RESIDENCY_RPC_UNKNOWN_FLAG_H_
#define RESIDENCY_RPC_UNKNOWN_FLAG_H_

#include <string>

namespace residency::rpc {

// For a main that parses Abseil flags: the first argument naming a flag
// that is not registered (nor Abseil's own --help, --flagfile, ...), or ""
// when there is none. absl::ParseCommandLine exits with status 1 on an
// unknown flag; checking first lets a main call a typo a usage error
// (exit 2) with its own message. Stops at "--".
std::string UnknownFlag(int argc, char** argv);

}  // namespace residency::rpc

#endif  // RESIDENCY_RPC_UNKNOWN_FLAG_H_
