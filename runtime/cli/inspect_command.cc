// `usine inspect CKPT`: what a checkpoint file holds — format, metadata, tensors (dtype,
// shape, bytes, recorded CRC-32C) — and with --verify whether every tensor still matches its
// CRC. CKPT may be a checkpoint directory, for the checkpoint that its `latest` names.
// One process, no MPI. Exit code 1 for an unreadable file or a CRC that does not match.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "CLI/CLI.hpp"
#include "checkpoint/checkpoint_directory.h"
#include "checkpoint/inspect.h"
#include "runtime/cli/commands.h"
#include "runtime/cli/internal/command_line.h"
#include "runtime/core/status_macros.h"

namespace usine::cli {
namespace {

constexpr char kDescription[] =
    "Prints a usine checkpoint's format, metadata and tensors (docs/checkpoint-format.md).\n"
    "CKPT is a checkpoint file, or a checkpoint directory (the checkpoint `latest` names).";

// Long text and bytes are cut to this many characters.
constexpr size_t kShown = 200;

std::string Shown(const MetadataValue& value) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        std::string text;
        if constexpr (std::is_same_v<T, JsonText>) {
          text = v.text;
        } else if constexpr (std::is_same_v<T, ByteBlob>) {
          return absl::StrCat(v.bytes.size(),
                              " bytes: ", absl::BytesToHexString(v.bytes.substr(0, kShown / 2)),
                              v.bytes.size() > kShown / 2 ? "..." : "");
        } else if constexpr (std::is_same_v<T, std::string>) {
          text = absl::StrCat("\"", absl::Utf8SafeCEscape(v), "\"");
        } else {
          return absl::StrCat(v);
        }
        return text.size() > kShown ? absl::StrCat(text.substr(0, kShown), "...") : text;
      },
      value);
}

absl::StatusOr<std::string> ResolvePath(const std::string& ckpt) {
  if (!std::filesystem::is_directory(ckpt)) return ckpt;
  ASSIGN_OR_RETURN(int64_t step, ReadLatestStep(ckpt));
  return CheckpointPath(ckpt, step);
}

absl::Status Run(const std::string& ckpt, bool verify) {
  ASSIGN_OR_RETURN(std::string path, ResolvePath(ckpt));
  ASSIGN_OR_RETURN(CheckpointInfo info, InspectCheckpoint(path, verify));
  absl::PrintF("%s: usine checkpoint, format version %d, written by %d rank%s\n", path,
               info.format_version, info.world_size, info.world_size == 1 ? "" : "s");
  absl::PrintF("metadata (%d):\n", info.metadata.size());
  for (const auto& [name, value] : info.metadata) {
    absl::PrintF("  %-24s %-6s %s\n", name, MetadataKindName(value), Shown(value));
  }
  absl::PrintF("tensors (%d, %.3f MB):\n", info.tensors.size(), info.tensor_bytes() / 1e6);
  int bad = 0;
  for (const StoredTensorInfo& t : info.tensors) {
    std::string check;
    if (t.crc_ok.has_value()) check = *t.crc_ok ? "  ok" : "  CRC MISMATCH";
    bad += t.crc_ok.has_value() && !*t.crc_ok;
    absl::PrintF("  %-32s %-5s %-20s %12d B  crc32c %08x%s\n", t.name, DTypeName(t.dtype),
                 t.shape.ToString(), t.bytes, t.crc32c, check);
  }
  if (bad > 0) {
    return absl::DataLossError(absl::StrCat(path, ": ", bad, " tensor", bad == 1 ? "" : "s",
                                            " do not match their CRC-32C"));
  }
  if (verify) absl::PrintF("verified: every tensor matches its CRC-32C\n");
  return absl::OkStatus();
}

}  // namespace

Command AddInspectCommand(CLI::App& parent) {
  struct Flags {
    std::string ckpt;
    bool verify = false;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* app = parent.add_subcommand(
      "inspect", "show a checkpoint's metadata and tensors; --verify checks its CRCs");
  app->footer(kDescription);
  app->add_option("CKPT", flags->ckpt, "a checkpoint file or directory")->required()->type_name("");
  app->add_flag("--verify", flags->verify, "read every tensor and check its CRC-32C");
  return {app, [flags] {
            return cli_internal::ExitCode("usine inspect", Run(flags->ckpt, flags->verify));
          }};
}

}  // namespace usine::cli
