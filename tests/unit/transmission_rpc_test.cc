#include "io/rpc/transmission_rpc.h"

#include <gtest/gtest.h>

#include <string>

#include "nlohmann/json.hpp"
#include "tests/unit/fake_rpc_backend.h"

namespace torrenty::io::rpc {
namespace {

using json = nlohmann::json;

class TransmissionRpcTest : public ::testing::Test {
 protected:
  TransmissionRpcTest() : rpc_(&backend_) {
    rpc_.set_session_id("sid");
    rpc_.set_clock([] { return int64_t{1700000120}; });
  }

  json Raw(std::string_view body) {
    const std::string out = rpc_.Handle(body);
    json j = json::parse(out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << out;
    EXPECT_TRUE(j.contains("result")) << out;
    return j;
  }
  json Call(const json& request) { return Raw(request.dump()); }

  FakeRpcBackend backend_;
  TransmissionRpc rpc_;
};

TEST_F(TransmissionRpcTest, TorrentGetReturnsTheAskedFieldsAndEchoesTheTag) {
  const json r = Call(json{{"method", "torrent-get"},
                           {"tag", 7},
                           {"arguments",
                            {{"fields",
                              {"id", "name", "status", "percentDone", "uploadRatio", "eta",
                               "downloadLimit", "hashString", "noSuchField"}}}}});
  EXPECT_EQ(r["result"], "success");
  EXPECT_EQ(r["tag"], 7);
  const json& ts = r["arguments"]["torrents"];
  ASSERT_EQ(ts.size(), 2u);
  EXPECT_EQ(ts[0]["id"], 1);
  EXPECT_EQ(ts[0]["name"], "alpha");
  EXPECT_EQ(ts[0]["status"], 4);
  EXPECT_DOUBLE_EQ(ts[0]["percentDone"].get<double>(), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(ts[0]["uploadRatio"].get<double>(), 0.5);
  EXPECT_EQ(ts[0]["hashString"], std::string(40, 'a'));
  EXPECT_FALSE(ts[0].contains("noSuchField"));
  EXPECT_EQ(ts[1]["uploadRatio"], 0.0);
  // No files, trackers or peers were asked for, so the backend was not asked to build them.
  EXPECT_FALSE(backend_.last_fields.files || backend_.last_fields.trackers ||
               backend_.last_fields.peers);
}

TEST_F(TransmissionRpcTest, TorrentGetIdsForms) {
  auto ids_of = [this](const json& ids) {
    json req = {{"method", "torrent-get"}, {"arguments", {{"fields", {"id"}}}}};
    if (!ids.is_null()) req["arguments"]["ids"] = ids;
    const json r = Call(req);
    std::vector<int> out;
    if (r["result"] != "success") return std::vector<int>{-100};
    for (const json& t : r["arguments"]["torrents"]) out.push_back(t["id"]);
    return out;
  };
  EXPECT_EQ(ids_of(nullptr), (std::vector<int>{1, 2}));
  EXPECT_EQ(ids_of(2), (std::vector<int>{2}));
  EXPECT_EQ(ids_of(json::array({1, 2})), (std::vector<int>{1, 2}));
  EXPECT_EQ(ids_of(json::array()), (std::vector<int>{1, 2}));
  EXPECT_EQ(ids_of(std::string(40, 'B')), (std::vector<int>{2}));
  EXPECT_EQ(ids_of(json::array({std::string(40, 'a'), 2})), (std::vector<int>{1, 2}));
  EXPECT_EQ(ids_of(99), (std::vector<int>{}));  // unknown ids are skipped, as in Transmission
  EXPECT_EQ(ids_of(-1), (std::vector<int>{}));
  EXPECT_EQ(ids_of(1.5), (std::vector<int>{-100}));
  EXPECT_EQ(ids_of("nonsense"), (std::vector<int>{-100}));
  EXPECT_EQ(ids_of(json::object()), (std::vector<int>{-100}));
  EXPECT_EQ(ids_of(json::array({true})), (std::vector<int>{-100}));
  EXPECT_EQ(ids_of(int64_t{1} << 40), (std::vector<int>{-100}));
}

TEST_F(TransmissionRpcTest, RecentlyActiveListsRecentTorrentsAndRemovedIds) {
  backend_.removed = {9};
  const json r = Call(json{{"method", "torrent-get"},
                           {"arguments", {{"fields", {"id"}}, {"ids", "recently-active"}}}});
  ASSERT_EQ(r["result"], "success");
  ASSERT_EQ(r["arguments"]["torrents"].size(), 1u);
  EXPECT_EQ(r["arguments"]["torrents"][0]["id"], 1);
  EXPECT_EQ(r["arguments"]["removed"], json::array({9}));
}

TEST_F(TransmissionRpcTest, TableFormat) {
  const json r = Call(json{{"method", "torrent-get"},
                           {"arguments", {{"fields", {"id", "name"}}, {"format", "table"}}}});
  ASSERT_EQ(r["result"], "success");
  const json& t = r["arguments"]["torrents"];
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0], json::array({"id", "name"}));
  EXPECT_EQ(t[2], json::array({2, "beta"}));
}

TEST_F(TransmissionRpcTest, FilesAndTrackers) {
  const json r = Call(json{
      {"method", "torrent-get"},
      {"arguments",
       {{"ids", {1}},
        {"fields",
         {"files", "fileStats", "priorities", "wanted", "trackerStats", "peers", "magnetLink"}}}}});
  ASSERT_EQ(r["result"], "success");
  const json& t = r["arguments"]["torrents"][0];
  EXPECT_EQ(t["files"][1]["name"], "alpha/two.bin");
  EXPECT_EQ(t["files"][1]["length"], 2 * 1024 * 1024);
  EXPECT_EQ(t["wanted"], json::array({true, false}));
  EXPECT_EQ(t["priorities"], json::array({0, 1}));
  EXPECT_EQ(t["fileStats"][1]["wanted"], false);
  EXPECT_EQ(t["trackerStats"][0]["lastAnnounceResult"], "Success");
  EXPECT_EQ(t["trackerStats"][0]["seederCount"], 1);
  EXPECT_EQ(t["peers"][0]["rateToClient"], 51200);
  EXPECT_EQ(t["magnetLink"], "magnet:?xt=urn:btih:" + std::string(40, 'a') +
                                 "&dn=alpha&tr=http%3A%2F%2F127.0.0.1%3A6969%2Fannounce");
  EXPECT_TRUE(backend_.last_fields.files && backend_.last_fields.trackers &&
              backend_.last_fields.peers);
}

TEST_F(TransmissionRpcTest, QueueMovesCallTheBackend) {
  for (const char* m :
       {"queue-move-top", "queue-move-up", "queue-move-down", "queue-move-bottom"}) {
    EXPECT_EQ(Call(json{{"method", m}, {"arguments", {{"ids", {2}}}}})["result"], "success") << m;
  }
  EXPECT_NE(Raw(R"({"method":"queue-move-top","arguments":{"ids":[99]}})")["result"], "success");
  EXPECT_EQ(backend_.Calls(), (std::vector<std::string>{"queue-top 2", "queue-up 2", "queue-down 2",
                                                        "queue-bottom 2"}));
}

TEST_F(TransmissionRpcTest, ActionsCallTheBackendWithResolvedIds) {
  EXPECT_EQ(Raw(R"({"method":"torrent-stop","arguments":{"ids":[1]}})")["result"], "success");
  EXPECT_EQ(Raw(R"({"method":"torrent-start","arguments":{"ids":1}})")["result"], "success");
  EXPECT_EQ(Raw(R"({"method":"torrent-start-now"})")["result"], "success");
  EXPECT_EQ(Call(json{{"method", "torrent-verify"},
                      {"arguments", {{"ids", std::string(40, 'b')}}}})["result"],
            "success");
  EXPECT_EQ(Raw(R"({"method":"torrent-remove","arguments":{"ids":[2],"delete-local-data":true}})")
                ["result"],
            "success");
  EXPECT_EQ(Raw(R"({"method":"torrent-remove","arguments":{"ids":[1]}})")["result"], "success");
  EXPECT_EQ(backend_.Calls(),
            (std::vector<std::string>{"stop 1", "start 1", "start-now 1,2", "verify 2",
                                      "remove+delete 2", "remove 1"}));
  // With nothing left, "every torrent" is nobody: the backend is not called with an empty list.
  EXPECT_EQ(Raw(R"({"method":"torrent-stop"})")["result"], "success");
  EXPECT_EQ(backend_.Calls().size(), 6u);
}

TEST_F(TransmissionRpcTest, ActionsOnUnknownIdsAreErrorsAndDoNothing) {
  const json r =
      Raw(R"({"method":"torrent-remove","arguments":{"ids":[1,42],"delete-local-data":true}})");
  EXPECT_EQ(r["result"], "no torrent with id 42");
  EXPECT_TRUE(backend_.Calls().empty());
  EXPECT_NE(Call(json{{"method", "torrent-stop"},
                      {"arguments", {{"ids", std::string(40, 'f')}}}})["result"],
            "success");
  EXPECT_TRUE(backend_.Calls().empty());
}

TEST_F(TransmissionRpcTest, TorrentSetConvertsKiBToBytes) {
  const json r = Call(json{{"method", "torrent-set"},
                           {"arguments",
                            {{"ids", {1}},
                             {"downloadLimit", 100},
                             {"downloadLimited", true},
                             {"uploadLimit", 200},
                             {"uploadLimited", false},
                             {"seedRatioLimit", 1.5},
                             {"seedRatioMode", 1},
                             {"files-unwanted", {1}},
                             {"queuePosition", 0},
                             {"peer-limit", 5}}}});
  ASSERT_EQ(r["result"], "success");
  ASSERT_EQ(backend_.sets.size(), 1u);
  const auto& [ids, s] = backend_.sets[0];
  EXPECT_EQ(ids, std::vector<int>{1});
  EXPECT_EQ(s.download_limit, 100 * 1024);
  EXPECT_EQ(s.download_limited, true);
  EXPECT_EQ(s.upload_limit, 200 * 1024);
  EXPECT_EQ(s.upload_limited, false);
  EXPECT_EQ(s.seed_ratio_limit, 1.5);
  EXPECT_EQ(s.seed_ratio_mode, 1);
  EXPECT_EQ(s.files_unwanted, std::vector<int>{1});
  EXPECT_TRUE(s.files_wanted.empty());
  EXPECT_EQ(s.queue_position, 0);
  EXPECT_FALSE(s.seed_idle_limit.has_value());
}

// superSeed is a Torrenty extension (BEP 16): torrent-add and torrent-set take it, torrent-get
// reports it, and a client that never sends it leaves it unset.
TEST_F(TransmissionRpcTest, SuperSeedExtension) {
  ASSERT_EQ(Raw(R"({"method":"torrent-set","arguments":{"ids":[1],"superSeed":true}})")["result"],
            "success");
  ASSERT_EQ(Raw(R"({"method":"torrent-set","arguments":{"ids":[1],"uploadLimit":1}})")["result"],
            "success");
  ASSERT_EQ(backend_.sets.size(), 2u);
  EXPECT_EQ(backend_.sets[0].second.super_seed, true);
  EXPECT_FALSE(backend_.sets[1].second.super_seed.has_value());
  EXPECT_NE(Raw(R"({"method":"torrent-set","arguments":{"ids":[1],"superSeed":"yes"}})")["result"],
            "success");
  ASSERT_EQ(
      Raw(R"({"method":"torrent-add","arguments":{"metainfo":"ZA==","superSeed":false}})")["result"],
      "success");
  ASSERT_FALSE(backend_.adds.empty());
  EXPECT_EQ(backend_.adds.back().super_seed, false);
  const json got = Raw(R"({"method":"torrent-get","arguments":{"fields":["id","superSeed"]}})");
  ASSERT_EQ(got["result"], "success");
  ASSERT_FALSE(got["arguments"]["torrents"].empty());
  EXPECT_TRUE(got["arguments"]["torrents"][0].contains("superSeed"));
}

TEST_F(TransmissionRpcTest, TorrentSetEmptyFileListMeansEveryFile) {
  ASSERT_EQ(
      Raw(R"({"method":"torrent-set","arguments":{"ids":[1,2],"files-wanted":[]}})")["result"],
      "success");
  ASSERT_EQ(backend_.sets.size(), 2u);
  EXPECT_EQ(backend_.sets[0].second.files_wanted, (std::vector<int>{0, 1}));
  EXPECT_EQ(backend_.sets[1].second.files_wanted, (std::vector<int>{0}));
}

TEST_F(TransmissionRpcTest, TorrentSetTypeErrors) {
  for (
      const char* bad : {
          R"({"method":"torrent-set","arguments":{"ids":[1],"downloadLimit":"fast"}})",
          R"({"method":"torrent-set","arguments":{"ids":[1],"downloadLimit":-1}})",
          R"({"method":"torrent-set","arguments":{"ids":[1],"downloadLimit":1e300}})",
          R"({"method":"torrent-set","arguments":{"ids":[1],"downloadLimit":9223372036854775807}})",
          R"({"method":"torrent-set","arguments":{"ids":[1],"downloadLimited":"yes"}})",
          R"({"method":"torrent-set","arguments":{"ids":[1],"files-wanted":[-1]}})",
          R"({"method":"torrent-set","arguments":{"ids":[1],"files-wanted":{"a":1}}})",
          R"({"method":"torrent-set","arguments":{"ids":[1],"seedRatioMode":7}})",
          R"({"method":"torrent-set","arguments":{"ids":[1],"seedRatioLimit":"x"}})",
      }) {
    const json r = Raw(bad);
    EXPECT_NE(r["result"], "success") << bad;
  }
  EXPECT_TRUE(backend_.sets.empty());
}

// transmission-remote --start-paused -a sends session-set start-added-torrents=false, then a
// torrent-add without "paused": the add must start paused.
TEST_F(TransmissionRpcTest, StartAddedTorrentsDecidesWhenPausedIsAbsent) {
  backend_.session.start_added_torrents = false;
  json r = Raw(R"({"method":"torrent-add","arguments":{"filename":"/tmp/x.torrent"}})");
  ASSERT_EQ(r["result"], "success") << r;
  ASSERT_EQ(backend_.adds.size(), 1u);
  EXPECT_TRUE(backend_.adds[0].paused);
  r = Raw(R"({"method":"torrent-add","arguments":{"filename":"/tmp/x.torrent","paused":false}})");
  ASSERT_EQ(r["result"], "success") << r;
  EXPECT_FALSE(backend_.adds[1].paused);
  r = Raw(R"({"method":"session-set","arguments":{"start-added-torrents":true}})");
  ASSERT_EQ(r["result"], "success") << r;
  ASSERT_FALSE(backend_.session_sets.empty());
  EXPECT_EQ(backend_.session_sets.back().start_added_torrents, std::optional<bool>(true));
  EXPECT_EQ(Raw(R"({"method":"session-get"})")["arguments"]["start-added-torrents"], false);
}

TEST_F(TransmissionRpcTest, TorrentAdd) {
  // "d4:spame" in base64, wrapped as some encoders do.
  json r = Raw(R"({"method":"torrent-add","tag":3,"arguments":{"metainfo":"ZDQ6c3Bh\nbWU=",)"
               R"("download-dir":"/dl","paused":true,"files-unwanted":[0,2]}})");
  ASSERT_EQ(r["result"], "success") << r;
  EXPECT_EQ(r["arguments"]["torrent-added"]["id"], 3);
  EXPECT_EQ(r["arguments"]["torrent-added"]["hashString"], std::string(40, 'c'));
  ASSERT_EQ(backend_.adds.size(), 1u);
  EXPECT_EQ(backend_.adds[0].metainfo, "d4:spame");
  EXPECT_EQ(backend_.adds[0].download_dir, "/dl");
  EXPECT_TRUE(backend_.adds[0].paused);
  EXPECT_EQ(backend_.adds[0].files_unwanted, (std::vector<int>{0, 2}));

  r = Raw(R"({"method":"torrent-add","arguments":{"filename":"/tmp/x.torrent"}})");
  ASSERT_EQ(r["result"], "success");
  EXPECT_EQ(backend_.adds[1].filename, "/tmp/x.torrent");
  EXPECT_FALSE(backend_.adds[1].paused);

  EXPECT_EQ(Raw(R"({"method":"torrent-add","arguments":{}})")["result"],
            "no filename or metainfo specified");
  EXPECT_EQ(Raw(R"({"method":"torrent-add","arguments":{"metainfo":"!!!"}})")["result"],
            "\"metainfo\" is not valid base64");
  EXPECT_EQ(Raw(R"({"method":"torrent-add","arguments":{"metainfo":"YmFk"}})")["result"],
            "invalid or corrupt torrent file");
  EXPECT_NE(Raw(R"({"method":"torrent-add","arguments":{"metainfo":5}})")["result"], "success");
}

TEST_F(TransmissionRpcTest, SessionGetAndSet) {
  json r = Raw(R"({"method":"session-set","arguments":{"speed-limit-down":100,)"
               R"("speed-limit-down-enabled":true,"speed-limit-up":200,"alt-speed-enabled":true,)"
               R"("rpc-version":99,"unknown-key":1}})");
  ASSERT_EQ(r["result"], "success");
  ASSERT_EQ(backend_.session_sets.size(), 1u);
  const SessionSettingsUpdate& u = backend_.session_sets[0];
  EXPECT_EQ(u.speed_limit_down, 100 * 1024);
  EXPECT_EQ(u.speed_limit_down_enabled, true);
  EXPECT_EQ(u.speed_limit_up, 200 * 1024);
  EXPECT_FALSE(u.speed_limit_up_enabled.has_value());
  EXPECT_EQ(u.alt_speed_enabled, true);

  r = Raw(R"({"method":"session-get"})");
  ASSERT_EQ(r["result"], "success");
  EXPECT_EQ(r["arguments"]["speed-limit-down"], 100);
  EXPECT_EQ(r["arguments"]["speed-limit-down-enabled"], true);
  EXPECT_EQ(r["arguments"]["session-id"], "sid");
  EXPECT_EQ(r["arguments"]["rpc-version"], kRpcVersion);
  EXPECT_EQ(r["arguments"]["units"]["speed-bytes"], kSpeedUnitBytes);
  EXPECT_EQ(r["arguments"]["version"], "0.1.0 (torrenty)");

  r = Raw(R"({"method":"session-get","arguments":{"fields":["version","peer-port","nope"]}})");
  ASSERT_EQ(r["result"], "success");
  EXPECT_EQ(r["arguments"].size(), 2u);
  EXPECT_EQ(r["arguments"]["peer-port"], 6881);

  EXPECT_NE(Raw(R"({"method":"session-set","arguments":{"speed-limit-up":[1]}})")["result"],
            "success");
  EXPECT_EQ(backend_.session_sets.size(), 1u);
}

TEST_F(TransmissionRpcTest, SessionStatsFreeSpaceAndUnsupported) {
  json r = Raw(R"({"method":"session-stats"})");
  ASSERT_EQ(r["result"], "success");
  EXPECT_EQ(r["arguments"]["current-stats"]["downloadedBytes"], 2 * 1024 * 1024);
  EXPECT_EQ(r["arguments"]["cumulative-stats"]["sessionCount"], 3);

  r = Raw(R"({"method":"free-space","arguments":{"path":"/"}})");
  ASSERT_EQ(r["result"], "success");
  EXPECT_EQ(r["arguments"]["path"], "/");
  EXPECT_GE(r["arguments"]["size-bytes"].get<int64_t>(), 0);
  EXPECT_NE(Raw(R"({"method":"free-space","arguments":{"path":"/no/such/dir"}})")["result"],
            "success");
  EXPECT_NE(Raw(R"({"method":"free-space"})")["result"], "success");

  EXPECT_NE(Raw(R"({"method":"port-test"})")["result"], "success");
  EXPECT_NE(Raw(R"({"method":"blocklist-update"})")["result"], "success");
  EXPECT_EQ(Raw(R"({"method":"no-such-method"})")["result"], "method name not recognized");
}

TEST_F(TransmissionRpcTest, MalformedRequestsGetAnErrorResult) {
  for (const char* bad :
       {"", "{", "[]", "null", "42", "\"x\"", R"({"method":5})", R"({"arguments":{}})",
        R"({"method":"torrent-get","arguments":[]})", R"({"method":"torrent-get","arguments":{}})",
        R"({"method":"torrent-get","arguments":{"fields":[1]}})",
        R"({"method":"torrent-get","arguments":{"fields":["id"],"format":"x"}})",
        R"({"method":"session-get","arguments":{"fields":"all"}})",
        "{\"method\":\"torrent-get\xff\"}", "\xef\xbb\xbf{}"}) {
    const json r = Raw(std::string_view(bad));
    EXPECT_NE(r["result"], "success") << bad;
  }
}

TEST_F(TransmissionRpcTest, InvalidUtf8InNamesIsReplacedNotThrown) {
  backend_.torrents[0].name = "bad\xff\xfename";
  const std::string out =
      rpc_.Handle(R"({"method":"torrent-get","arguments":{"fields":["name"]}})");
  const json j = json::parse(out, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["result"], "success");
}

}  // namespace
}  // namespace torrenty::io::rpc
