// Tests for the flags download, seed and serve share: values, bounds, and that each error is one
// usage line.
#include "tools/torrenty/session_flags.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace torrenty::tools {
namespace {

// Runs TakeSessionFlag over `args` as the parsers do; returns the first result that is not
// kTaken, or kTaken when every argument was a session flag.
FlagParse ParseAll(std::vector<std::string> args, SessionFlags* flags, SessionFlagSet set = {}) {
  args.insert(args.begin(), "cmd");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  const int argc = static_cast<int>(argv.size());
  for (int i = 1; i < argc; ++i) {
    const FlagParse f = TakeSessionFlag("test", argc, argv.data(), &i, flags, set);
    if (f != FlagParse::kTaken) return f;
  }
  return FlagParse::kTaken;
}

TEST(SessionFlags, DefaultsMatchTheDocs) {
  const SessionFlags f;
  EXPECT_EQ(f.port, 0);
  EXPECT_FALSE(f.port_given);
  EXPECT_EQ(f.threads, 0);
  EXPECT_EQ(f.hash_threads, 2);
  EXPECT_EQ(f.piece_memory, int64_t{32} << 20);
  EXPECT_EQ(f.verbosity, io::Verbosity::kNormal);
}

TEST(SessionFlags, TakesEachFlagInBothSpellings) {
  SessionFlags f;
  ASSERT_EQ(ParseAll({"--port", "6999", "--threads=3", "--hash-threads", "4", "--piece-memory=8M",
                      "-q", "--quiet"},
                     &f),
            FlagParse::kTaken);
  EXPECT_EQ(f.port, 6999);
  EXPECT_TRUE(f.port_given);
  EXPECT_EQ(f.threads, 3);
  EXPECT_EQ(f.hash_threads, 4);
  EXPECT_EQ(f.piece_memory, 8 << 20);
  EXPECT_TRUE(f.quiet());

  io::SessionConfig config;
  f.ApplyTo(&config);
  EXPECT_EQ(config.port, 6999);
  EXPECT_TRUE(config.port_explicit);
  EXPECT_EQ(config.threads, 3);
  EXPECT_EQ(config.hash_threads, 4);
  EXPECT_EQ(config.piece_memory_bytes, 8 << 20);
  EXPECT_EQ(config.verbosity, io::Verbosity::kQuiet);
}

TEST(SessionFlags, NoLsdTurnsLocalDiscoveryOff) {
  SessionFlags f;
  io::SessionConfig config;
  f.ApplyTo(&config);
  EXPECT_TRUE(config.local_discovery);
  ASSERT_EQ(ParseAll({"--no-lsd"}, &f), FlagParse::kTaken);
  f.ApplyTo(&config);
  EXPECT_FALSE(config.local_discovery);
}

TEST(SessionFlags, NoPexTurnsPeerExchangeOff) {
  SessionFlags f;
  io::SessionConfig config;
  config.pex = false;
  f.ApplyTo(&config);
  EXPECT_TRUE(config.pex);
  ASSERT_EQ(ParseAll({"--no-pex"}, &f), FlagParse::kTaken);
  f.ApplyTo(&config);
  EXPECT_FALSE(config.pex);
}

TEST(SessionFlags, RejectsBadValues) {
  for (const std::vector<std::string>& bad :
       std::vector<std::vector<std::string>>{{"--port"},
                                             {"--port", "70000"},
                                             {"--threads", "0"},
                                             {"--threads=65"},
                                             {"--hash-threads", "x"},
                                             {"--piece-memory", "512K"},
                                             {"--piece-memory"},
                                             {"-v", "-q"}}) {
    SessionFlags f;
    EXPECT_EQ(ParseAll(bad, &f), FlagParse::kBad) << bad[0];
  }
}

TEST(SessionFlags, Dht) {
  SessionFlags f;
  // On by default, from the public routers.
  io::SessionConfig::Dht d = f.Dht("/s/dht.dat");
  EXPECT_TRUE(d.enabled);
  EXPECT_EQ(d.bootstrap.size(), 3u);
  EXPECT_EQ(d.state_file, "/s/dht.dat");
  ASSERT_EQ(ParseAll({"--dht-bootstrap", "127.0.0.1:6881", "--dht-bootstrap=node.example:1",
                      "--dht-bootstrap", "[::1]:6882"},
                     &f),
            FlagParse::kTaken);
  d = f.Dht("");
  EXPECT_EQ(d.bootstrap,
            (std::vector<std::string>{"127.0.0.1:6881", "node.example:1", "[::1]:6882"}));
  ASSERT_EQ(ParseAll({"--no-dht"}, &f), FlagParse::kTaken);
  EXPECT_FALSE(f.Dht("/s/dht.dat").enabled);
  for (const std::vector<std::string>& bad :
       std::vector<std::vector<std::string>>{{"--dht-bootstrap"},
                                             {"--dht-bootstrap", "host"},
                                             {"--dht-bootstrap", "host:0"},
                                             {"--dht-bootstrap", ":6881"},
                                             {"--dht-bootstrap", "h:70000"},
                                             {"--dht-bootstrap", "::1:6881"},
                                             {"--dht-bootstrap", "[::1:6881"},
                                             {"--dht-bootstrap", "[]:6881"},
                                             {"--dht-bootstrap", "[nothex]:6881"}}) {
    SessionFlags g;
    EXPECT_EQ(ParseAll(bad, &g), FlagParse::kBad) << bad.back();
  }
}

TEST(SessionFlags, LeavesOtherArgumentsAndExcludedFlagsAlone) {
  SessionFlags f;
  EXPECT_EQ(ParseAll({"--peer", "1.2.3.4:5"}, &f), FlagParse::kNotMine);
  EXPECT_EQ(ParseAll({"--ports=1"}, &f), FlagParse::kNotMine);
  EXPECT_EQ(ParseAll({"--piece-memory", "8M"}, &f, {.piece_memory = false}), FlagParse::kNotMine);
  EXPECT_EQ(f.piece_memory, int64_t{32} << 20);
}

}  // namespace
}  // namespace torrenty::tools
