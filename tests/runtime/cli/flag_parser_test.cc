#include "runtime/cli/internal/flag_parser.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/device_test.h"

namespace usine::cli_internal {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Values {
  std::string out = "default-out";
  int64_t n = 7;
  double f = 0.5;
  std::string mode = "fatal";
  bool verify = false;
  bool quiet = true;
};

FlagParser Parser(Values* v) {
  FlagParser parser("usine test", "[flags] INPUT...", "Tests the parser.");
  parser.String("out", "DIR", "output directory", &v->out);
  parser.Int("count", "N", "a count", &v->n);
  parser.Double("fraction", "F", "a fraction", &v->f);
  parser.Choice("mode", {"fatal", "skip"}, "what errors do", &v->mode);
  parser.Bool("verify", "check more", &v->verify);
  parser.Bool("quiet", "print less", &v->quiet);
  return parser;
}

std::string Error(std::vector<std::string> args) {
  Values v;
  std::vector<std::string> positional;
  return std::string(Parser(&v).Parse(args, &positional).status().message());
}

TEST(FlagParser, ReadsBothFlagSpellingsAndPositionals) {
  Values v;
  std::vector<std::string> positional;
  ASSERT_OK_AND_ASSIGN(
      bool run, Parser(&v).Parse({"a.txt", "--out", "x", "--count=-3", "dir/", "--fraction", "0.25",
                                  "--mode=skip", "--", "--literal"},
                                 &positional));
  EXPECT_TRUE(run);
  EXPECT_EQ(v.out, "x");
  EXPECT_EQ(v.n, -3);
  EXPECT_EQ(v.f, 0.25);
  EXPECT_EQ(v.mode, "skip");
  EXPECT_THAT(positional, ElementsAre("a.txt", "dir/", "--literal"));
}

TEST(FlagParser, SwitchesTakeNoValueOrAnExplicitOne) {
  Values v;
  std::vector<std::string> positional;
  ASSERT_OK_AND_ASSIGN(bool run,
                       Parser(&v).Parse({"--verify", "x.h5", "--quiet=false"}, &positional));
  EXPECT_TRUE(run);
  EXPECT_TRUE(v.verify);
  EXPECT_FALSE(v.quiet);
  EXPECT_THAT(positional, ElementsAre("x.h5"));
  EXPECT_THAT(Error({"--verify=yes"}), HasSubstr("flag --verify: 'yes' is not true or false"));
}

TEST(FlagParser, RepeatedFlagsCollectEveryValueInOrder) {
  std::vector<std::string> sets, positional;
  FlagParser parser("usine test", "[flags]", "Tests the parser.");
  parser.Repeated("set", "KEY=VALUE", "an override", &sets);
  ASSERT_OK_AND_ASSIGN(bool run,
                       parser.Parse({"--set", "optim.lr=3e-4", "--set=data.dir=x=y"}, &positional));
  EXPECT_TRUE(run);
  EXPECT_THAT(sets, ElementsAre("optim.lr=3e-4", "data.dir=x=y"));
}

TEST(FlagParser, HelpStopsParsingAndListsEveryFlagWithItsDefault) {
  Values v;
  std::vector<std::string> positional;
  FlagParser parser = Parser(&v);
  ASSERT_OK_AND_ASSIGN(bool run, parser.Parse({"--count", "1", "--help", "--bogus"}, &positional));
  EXPECT_FALSE(run);
  const std::string help = parser.Help();
  EXPECT_THAT(help, HasSubstr("usage: usine test [flags] INPUT...\n\nTests the parser."));
  EXPECT_THAT(help, HasSubstr("--out DIR"));
  EXPECT_THAT(help, HasSubstr("(default: default-out)"));
  EXPECT_THAT(help, HasSubstr("--count N"));
  EXPECT_THAT(help, HasSubstr("(default: 7)"));
  EXPECT_THAT(help, HasSubstr("--mode fatal|skip"));
  EXPECT_THAT(help, HasSubstr("--help"));
}

TEST(FlagParser, ErrorsNameTheFlag) {
  EXPECT_THAT(Error({"--bogus", "1"}), HasSubstr("unknown flag --bogus (see usine test --help)"));
  EXPECT_THAT(Error({"--bogus=1"}), HasSubstr("unknown flag --bogus "));
  EXPECT_THAT(Error({"-o", "x"}), HasSubstr("unknown flag -o"));
  EXPECT_THAT(Error({"--out"}), HasSubstr("flag --out needs a value (DIR)"));
  EXPECT_THAT(Error({"--count", "12x"}), HasSubstr("flag --count: '12x' is not an integer"));
  EXPECT_THAT(Error({"--fraction=half"}), HasSubstr("flag --fraction: 'half' is not a number"));
  EXPECT_THAT(Error({"--mode", "maybe"}), HasSubstr("flag --mode: 'maybe' is not fatal or skip"));
}

}  // namespace
}  // namespace usine::cli_internal
