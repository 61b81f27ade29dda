// The frame of the commands that run on every rank of a launch (`usine train`, `finetune`,
// `eval`, `sample`): the World, and an error turned into one line and exit code 1.
//
//   return RunOnWorld("usine eval", [&](World& world) -> absl::StatusOr<int> {
//     RETURN_IF_ERROR(Evaluate...);
//     return 0;
//   });
#ifndef USINE_RUNTIME_CLI_INTERNAL_RUN_ON_WORLD_H_
#define USINE_RUNTIME_CLI_INTERNAL_RUN_ON_WORLD_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"

#include "runtime/launch/world.h"

namespace usine::cli_internal {

// Runs `body` on a World made for `command` ("usine eval") and returns the exit code that
// `body` gives, or 1 after an error (World::Init's or body's), printed as one line starting
// with `command`. With more than one rank an error ends the whole job (World::Abort): the
// other ranks may be waiting in a collective.
int RunOnWorld(const std::string& command, const std::function<absl::StatusOr<int>(World&)>& body);

}  // namespace usine::cli_internal

#endif  // USINE_RUNTIME_CLI_INTERNAL_RUN_ON_WORLD_H_
