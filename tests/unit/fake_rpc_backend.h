// An in-memory RpcBackend for the RPC tests: a few torrents, and a log of every mutating call so a
// test can check what a client's request turned into.
#pragma once

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "io/rpc/rpc_backend.h"

namespace torrenty::io::rpc {

class FakeRpcBackend : public RpcBackend {
 public:
  FakeRpcBackend() {
    TorrentView a;
    a.id = 1;
    a.hash_string = std::string(40, 'a');
    a.name = "alpha";
    a.status = TorrentStatus::kDownload;
    a.download_dir = "/data";
    a.total_size = 3 * 1024 * 1024;
    a.size_when_done = a.total_size;
    a.left_until_done = 1024 * 1024;
    a.have_valid = 2 * 1024 * 1024;
    a.rate_download = 51200;
    a.rate_upload = 1024;
    a.downloaded_ever = 2 * 1024 * 1024;
    a.uploaded_ever = 1024 * 1024;
    a.peers_connected = 3;
    a.peers_sending_to_us = 2;
    a.peers_getting_from_us = 1;
    a.eta = 20;
    a.piece_count = 12;
    a.piece_size = 256 * 1024;
    a.added_date = 1700000000;
    a.activity_date = 1700000100;
    a.comment = "a comment";
    a.files = {FileView{"alpha/one.bin", 1024 * 1024, 1024 * 1024, true, 0},
               FileView{"alpha/two.bin", 2 * 1024 * 1024, 1024 * 1024, false, 1}};
    a.trackers = {TrackerView{0, 0, "http://127.0.0.1:6969/announce", "http://127.0.0.1:6969", true,
                              true, "Success", 1700000050, 7, 1700001850, 1, 2}};
    a.peers = {PeerView{"127.0.0.1", 51413, "Transmission 3.00", false, 0.5, 51200, 1024}};
    torrents.push_back(a);
    TorrentView b;
    b.id = 2;
    b.hash_string = std::string(40, 'b');
    b.name = "beta";
    b.status = TorrentStatus::kSeed;
    b.total_size = 1000;
    b.size_when_done = 1000;
    b.have_valid = 1000;
    b.added_date = 1600000000;
    b.files = {FileView{"beta", 1000, 1000, true, 0}};
    torrents.push_back(b);
    session.download_dir = "/data";
    session.version = "0.1.0 (torrenty)";
    session.peer_port = 6881;
  }

  std::vector<TorrentView> GetTorrents(const std::vector<int>& ids,
                                       const ViewFields& fields) override {
    std::lock_guard<std::mutex> lock(mu);
    ++get_calls;
    last_fields = fields;
    std::vector<TorrentView> out;
    for (const TorrentView& t : torrents) {
      if (!ids.empty() && std::find(ids.begin(), ids.end(), t.id) == ids.end()) continue;
      TorrentView v = t;
      if (!fields.files) v.files.clear();
      if (!fields.trackers) v.trackers.clear();
      if (!fields.peers) v.peers.clear();
      out.push_back(std::move(v));
    }
    return out;
  }
  std::vector<int> RemovedIds() override {
    std::lock_guard<std::mutex> lock(mu);
    return removed;
  }
  absl::StatusOr<AddResult> AddTorrent(const AddRequest& request) override {
    std::lock_guard<std::mutex> lock(mu);
    adds.push_back(request);
    if (request.metainfo == "bad")
      return absl::InvalidArgumentError("invalid or corrupt torrent file");
    AddResult r;
    r.id = next_id++;
    r.name = "added";
    r.hash_string = std::string(40, 'c');
    TorrentView v;
    v.id = r.id;
    v.name = r.name;
    v.hash_string = r.hash_string;
    v.status = request.paused ? TorrentStatus::kStopped : TorrentStatus::kDownload;
    torrents.push_back(v);
    return r;
  }
  absl::Status StartTorrents(const std::vector<int>& ids) override { return Log("start", ids); }
  absl::Status StopTorrents(const std::vector<int>& ids) override { return Log("stop", ids); }
  absl::Status StartTorrentsNow(const std::vector<int>& ids) override {
    return Log("start-now", ids);
  }
  absl::Status MoveInQueue(const std::vector<int>& ids, QueueDirection d) override {
    static constexpr const char* kNames[] = {"queue-top", "queue-up", "queue-down", "queue-bottom"};
    return Log(kNames[static_cast<int>(d)], ids);
  }
  absl::Status VerifyTorrents(const std::vector<int>& ids) override { return Log("verify", ids); }
  absl::Status RemoveTorrents(const std::vector<int>& ids, bool delete_local_data) override {
    absl::Status s = Log(delete_local_data ? "remove+delete" : "remove", ids);
    std::lock_guard<std::mutex> lock(mu);
    for (int id : ids) {
      removed.push_back(id);
      torrents.erase(std::remove_if(torrents.begin(), torrents.end(),
                                    [id](const TorrentView& t) { return t.id == id; }),
                     torrents.end());
    }
    return s;
  }
  absl::Status SetTorrents(const std::vector<int>& ids, const TorrentSettings& settings) override {
    std::lock_guard<std::mutex> lock(mu);
    sets.emplace_back(ids, settings);
    return absl::OkStatus();
  }
  SessionSettings GetSession() override {
    std::lock_guard<std::mutex> lock(mu);
    return session;
  }
  absl::Status SetSession(const SessionSettingsUpdate& u) override {
    std::lock_guard<std::mutex> lock(mu);
    session_sets.push_back(u);
    if (u.speed_limit_down) session.speed_limit_down = *u.speed_limit_down;
    if (u.speed_limit_down_enabled) session.speed_limit_down_enabled = *u.speed_limit_down_enabled;
    if (u.speed_limit_up) session.speed_limit_up = *u.speed_limit_up;
    if (u.speed_limit_up_enabled) session.speed_limit_up_enabled = *u.speed_limit_up_enabled;
    if (u.alt_speed_enabled) session.alt_speed_enabled = *u.alt_speed_enabled;
    return absl::OkStatus();
  }
  SessionStats GetSessionStats() override {
    SessionStats s;
    s.torrent_count = 2;
    s.active_torrent_count = 2;
    s.download_speed = 51200;
    s.current.uploaded_bytes = 1024 * 1024;
    s.current.downloaded_bytes = 2 * 1024 * 1024;
    s.current.seconds_active = 90;
    s.cumulative = s.current;
    s.cumulative.session_count = 3;
    return s;
  }
  std::string Metrics() override {
    return "# HELP torrenty_torrents Torrents in the session.\n# TYPE torrenty_torrents gauge\n"
           "torrenty_torrents 2\n";
  }

  // Locked copies, for tests that read while the server thread may call in.
  int GetCalls() {
    std::lock_guard<std::mutex> lock(mu);
    return get_calls;
  }
  std::vector<AddRequest> Adds() {
    std::lock_guard<std::mutex> lock(mu);
    return adds;
  }
  std::vector<std::pair<std::vector<int>, TorrentSettings>> Sets() {
    std::lock_guard<std::mutex> lock(mu);
    return sets;
  }
  std::vector<SessionSettingsUpdate> SessionSets() {
    std::lock_guard<std::mutex> lock(mu);
    return session_sets;
  }

  // Calls as "verb id,id".
  std::vector<std::string> Calls() {
    std::lock_guard<std::mutex> lock(mu);
    return calls;
  }

  std::mutex mu;
  std::vector<TorrentView> torrents;
  SessionSettings session;
  std::vector<std::string> calls;
  std::vector<AddRequest> adds;
  std::vector<std::pair<std::vector<int>, TorrentSettings>> sets;
  std::vector<SessionSettingsUpdate> session_sets;
  std::vector<int> removed;
  ViewFields last_fields;
  int get_calls = 0;
  int next_id = 3;

 private:
  absl::Status Log(const char* verb, const std::vector<int>& ids) {
    std::lock_guard<std::mutex> lock(mu);
    std::string s = verb;
    s += " ";
    for (size_t i = 0; i < ids.size(); ++i) absl::StrAppend(&s, i ? "," : "", ids[i]);
    calls.push_back(s);
    return absl::OkStatus();
  }
};

}  // namespace torrenty::io::rpc
