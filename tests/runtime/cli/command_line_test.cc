#include "runtime/cli/internal/command_line.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "CLI/CLI.hpp"

namespace usine::cli_internal {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A command line shaped like usine's: `prep` with flags and inputs, `bench data|train`.
class CommandLineTest : public ::testing::Test {
 protected:
  CommandLineTest() {
    usine_.require_subcommand(1);
    CLI::App* prep = usine_.add_subcommand("prep", "tokenise");
    prep->add_option("inputs", inputs_, "files")->required();
    AddFlag(*prep, "--out", out_, "where the shards go", "DIR")->required();
    AddFlag(*prep, "--shard-tokens", shard_tokens_, "tokens per shard", "N");
    AddFlag(*prep, "--on-error", on_error_, "fatal or skip", "MODE")
        ->check(CLI::IsMember({"fatal", "skip"}));
    CLI::App* bench = usine_.add_subcommand("bench", "benchmarks");
    bench->require_subcommand(1);
    bench->add_subcommand("data", "data");
    bench->add_subcommand("train", "train");
  }

  // The failure for `usine ARGS...`; a line that parses fails the test.
  ParseFailure Fail(std::vector<std::string> args) {
    std::reverse(args.begin(), args.end());  // CLI11 takes them last first.
    try {
      usine_.parse(args);
    } catch (const CLI::ParseError& error) {
      return ExplainParseError(usine_, error);
    }
    ADD_FAILURE() << "the command line parsed";
    return {};
  }

  CLI::App usine_{"usine", "usine"};
  std::vector<std::string> inputs_;
  std::string out_;
  int64_t shard_tokens_ = 100;
  std::string on_error_ = "fatal";
};

TEST_F(CommandLineTest, HelpIsTheHelpOfTheCommandItFollows) {
  ParseFailure help = Fail({"prep", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.err, IsEmpty());
  EXPECT_THAT(help.out, HasSubstr("Usage: usine prep [OPTIONS] inputs..."));
  EXPECT_THAT(help.out, HasSubstr("--shard-tokens N=100"));  // With its default.
  EXPECT_THAT(help.out, HasSubstr("--on-error MODE:{fatal,skip}=fatal"));
  EXPECT_THAT(Fail({"--help"}).out, HasSubstr("bench"));
}

TEST_F(CommandLineTest, UnknownCommandsAndFlagsAreNamedWithTheNearOne) {
  EXPECT_EQ(Fail({"perp"}).err,
            "usine: unknown command 'perp' (did you mean prep?); the commands are prep, bench");
  EXPECT_EQ(Fail({"frobnicate", "--x"}).err,
            "usine: unknown command 'frobnicate'; the commands are prep, bench");
  EXPECT_EQ(
      Fail({"bench", "dat"}).err,
      "usine bench: unknown command 'dat' (did you mean data?); the commands are data, train");
  EXPECT_EQ(Fail({"prep", "x", "--out", "o", "--shard-tokenz", "5"}).err,
            "usine prep: unknown flag --shard-tokenz (did you mean --shard-tokens?) "
            "(usine prep --help)");
  EXPECT_EQ(Fail({"prep", "x", "--out=o", "--zzz=1"}).err,
            "usine prep: unknown flag --zzz (usine prep --help)");
  EXPECT_EQ(Fail({"bench", "data", "--x"}).err,
            "usine bench data: unknown flag --x (usine bench data --help)");
}

TEST_F(CommandLineTest, MissingAndIllTypedValuesAreNamed) {
  ParseFailure none = Fail({});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_EQ(none.err, "usine: give a command: prep, bench (usine --help)");
  EXPECT_EQ(Fail({"bench"}).err, "usine bench: give a command: data, train (usine bench --help)");
  EXPECT_THAT(Fail({"prep", "x"}).err, HasSubstr("usine prep: --out is required"));
  EXPECT_THAT(Fail({"prep", "x", "--out", "o", "--shard-tokens", "many"}).err,
              HasSubstr("--shard-tokens"));
  EXPECT_THAT(Fail({"prep", "x", "--out", "o", "--on-error", "ignore"}).err,
              HasSubstr("usine prep: --on-error: ignore not in {fatal,skip}"));
  for (const ParseFailure& failure : {Fail({"prep", "x"}), Fail({"perp"})}) {
    EXPECT_EQ(failure.exit_code, 2);
    EXPECT_THAT(failure.out, IsEmpty());
    EXPECT_EQ(failure.err.find('\n'), std::string::npos) << "one line: " << failure.err;
  }
}

}  // namespace
}  // namespace usine::cli_internal
