#include "runtime/cli/internal/run_on_world.h"

#include <cstdio>
#include <memory>

#include "runtime/core/status_macros.h"

namespace usine::cli_internal {

int RunOnWorld(const std::string& command, const std::function<absl::StatusOr<int>(World&)>& body) {
  absl::StatusOr<std::unique_ptr<World>> world = World::Init();
  if (!world.ok()) {
    std::fprintf(stderr, "%s: %s\n", command.c_str(), world.status().ToString().c_str());
    return 1;
  }
  const absl::StatusOr<int> code = body(**world);
  if (code.ok()) return *code;
  if ((*world)->size() > 1) World::Abort(WithContext(code.status(), command), 1);
  std::fprintf(stderr, "%s: %s\n", command.c_str(), code.status().ToString().c_str());
  return 1;
}

}  // namespace usine::cli_internal
