#include "io/rpc/torrent_fields.h"

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "engine/base/text_escape.h"
#include "io/rpc/transmission_rpc.h"
#include "nlohmann/json.hpp"

namespace torrenty::io::rpc {
namespace {

using json = nlohmann::json;

const absl::flat_hash_map<std::string_view, TorrentField>& FieldNames() {
  static const auto* names = new absl::flat_hash_map<std::string_view, TorrentField>{
      {"activityDate", TorrentField::kActivityDate},
      {"addedDate", TorrentField::kAddedDate},
      {"bandwidthPriority", TorrentField::kBandwidthPriority},
      {"comment", TorrentField::kComment},
      {"corruptEver", TorrentField::kCorruptEver},
      {"creator", TorrentField::kCreator},
      {"dateCreated", TorrentField::kDateCreated},
      {"desiredAvailable", TorrentField::kDesiredAvailable},
      {"doneDate", TorrentField::kDoneDate},
      {"downloadDir", TorrentField::kDownloadDir},
      {"downloadedEver", TorrentField::kDownloadedEver},
      {"downloadLimit", TorrentField::kDownloadLimit},
      {"downloadLimited", TorrentField::kDownloadLimited},
      {"editDate", TorrentField::kEditDate},
      {"error", TorrentField::kError},
      {"errorString", TorrentField::kErrorString},
      {"eta", TorrentField::kEta},
      {"etaIdle", TorrentField::kEtaIdle},
      {"files", TorrentField::kFiles},
      {"fileStats", TorrentField::kFileStats},
      {"hashString", TorrentField::kHashString},
      {"haveUnchecked", TorrentField::kHaveUnchecked},
      {"haveValid", TorrentField::kHaveValid},
      {"honorsSessionLimits", TorrentField::kHonorsSessionLimits},
      {"id", TorrentField::kId},
      {"isFinished", TorrentField::kIsFinished},
      {"isPrivate", TorrentField::kIsPrivate},
      {"isStalled", TorrentField::kIsStalled},
      {"labels", TorrentField::kLabels},
      {"leftUntilDone", TorrentField::kLeftUntilDone},
      {"magnetLink", TorrentField::kMagnetLink},
      {"manualAnnounceTime", TorrentField::kManualAnnounceTime},
      {"metadataPercentComplete", TorrentField::kMetadataPercentComplete},
      {"name", TorrentField::kName},
      {"peers", TorrentField::kPeers},
      {"peersConnected", TorrentField::kPeersConnected},
      {"peersFrom", TorrentField::kPeersFrom},
      {"peersGettingFromUs", TorrentField::kPeersGettingFromUs},
      {"peersSendingToUs", TorrentField::kPeersSendingToUs},
      {"percentDone", TorrentField::kPercentDone},
      {"pieceCount", TorrentField::kPieceCount},
      {"pieceSize", TorrentField::kPieceSize},
      {"priorities", TorrentField::kPriorities},
      {"queuePosition", TorrentField::kQueuePosition},
      {"rateDownload", TorrentField::kRateDownload},
      {"rateUpload", TorrentField::kRateUpload},
      {"recheckProgress", TorrentField::kRecheckProgress},
      {"secondsDownloading", TorrentField::kSecondsDownloading},
      {"secondsSeeding", TorrentField::kSecondsSeeding},
      {"seedIdleLimit", TorrentField::kSeedIdleLimit},
      {"seedIdleMode", TorrentField::kSeedIdleMode},
      {"seedRatioLimit", TorrentField::kSeedRatioLimit},
      {"seedRatioMode", TorrentField::kSeedRatioMode},
      {"sizeWhenDone", TorrentField::kSizeWhenDone},
      {"startDate", TorrentField::kStartDate},
      {"status", TorrentField::kStatus},
      {"superSeed", TorrentField::kSuperSeed},
      {"trackers", TorrentField::kTrackers},
      {"trackerStats", TorrentField::kTrackerStats},
      {"totalSize", TorrentField::kTotalSize},
      {"torrentFile", TorrentField::kTorrentFile},
      {"uploadedEver", TorrentField::kUploadedEver},
      {"uploadLimit", TorrentField::kUploadLimit},
      {"uploadLimited", TorrentField::kUploadLimited},
      {"uploadRatio", TorrentField::kUploadRatio},
      {"wanted", TorrentField::kWanted},
      {"webseeds", TorrentField::kWebseeds},
      {"webseedsSendingToUs", TorrentField::kWebseedsSendingToUs},
  };
  return *names;
}

std::string PercentEncode(std::string_view in) {
  std::string out;
  engine::AppendPercentEncoded(in, &out);
  return out;
}

std::string MagnetLink(const TorrentView& t) {
  std::string link =
      absl::StrCat("magnet:?xt=urn:btih:", t.hash_string, "&dn=", PercentEncode(t.name));
  for (const TrackerView& tr : t.trackers)
    absl::StrAppend(&link, "&tr=", PercentEncode(tr.announce));
  return link;
}

// Transmission's tr_getRatio: -1 when nothing moved, -2 for "infinite".
double UploadRatio(const TorrentView& t) {
  const int64_t base = t.downloaded_ever != 0 ? t.downloaded_ever : t.have_valid;
  if (base > 0) return static_cast<double>(t.uploaded_ever) / static_cast<double>(base);
  return t.uploaded_ever > 0 ? -2.0 : -1.0;
}

}  // namespace

std::optional<TorrentField> FindTorrentField(std::string_view name) {
  auto it = FieldNames().find(name);
  if (it == FieldNames().end()) return std::nullopt;
  return it->second;
}

void AddNeeds(TorrentField f, ViewFields* need) {
  switch (f) {
    case TorrentField::kFiles:
    case TorrentField::kFileStats:
    case TorrentField::kPriorities:
    case TorrentField::kWanted:
      need->files = true;
      break;
    case TorrentField::kTrackers:
    case TorrentField::kTrackerStats:
    case TorrentField::kMagnetLink:
      need->trackers = true;
      break;
    case TorrentField::kPeers:
      need->peers = true;
      break;
    default:
      break;
  }
}

nlohmann::json TorrentFieldValue(const TorrentView& t, TorrentField f) {
  switch (f) {
    case TorrentField::kActivityDate:
      return t.activity_date;
    case TorrentField::kAddedDate:
      return t.added_date;
    case TorrentField::kBandwidthPriority:
      return 0;
    case TorrentField::kComment:
      return t.comment;
    case TorrentField::kCorruptEver:
      return t.corrupt_ever;
    case TorrentField::kCreator:
      return t.creator;
    case TorrentField::kDateCreated:
      return t.date_created;
    case TorrentField::kDesiredAvailable:
      return 0;
    case TorrentField::kDoneDate:
      return t.done_date;
    case TorrentField::kDownloadDir:
      return t.download_dir;
    case TorrentField::kDownloadedEver:
      return t.downloaded_ever;
    case TorrentField::kDownloadLimit:
      return t.download_limit / kSpeedUnitBytes;
    case TorrentField::kDownloadLimited:
      return t.download_limited;
    case TorrentField::kEditDate:
      return 0;
    case TorrentField::kError:
      return t.error;
    case TorrentField::kErrorString:
      return t.error_string;
    case TorrentField::kEta:
      return t.eta;
    case TorrentField::kEtaIdle:
      return -1;
    case TorrentField::kFiles: {
      json a = json::array();
      for (const FileView& file : t.files) {
        a.push_back({{"bytesCompleted", file.bytes_completed},
                     {"length", file.length},
                     {"name", file.name}});
      }
      return a;
    }
    case TorrentField::kFileStats: {
      json a = json::array();
      for (const FileView& file : t.files) {
        a.push_back({{"bytesCompleted", file.bytes_completed},
                     {"wanted", file.wanted},
                     {"priority", file.priority}});
      }
      return a;
    }
    case TorrentField::kHashString:
      return t.hash_string;
    case TorrentField::kHaveUnchecked:
      return 0;
    case TorrentField::kHaveValid:
      return t.have_valid;
    case TorrentField::kHonorsSessionLimits:
      return t.honors_session_limits;
    case TorrentField::kId:
      return t.id;
    case TorrentField::kIsFinished:
      return t.is_finished;
    case TorrentField::kIsPrivate:
      return t.is_private;
    case TorrentField::kIsStalled:
      return false;
    case TorrentField::kLabels:
      return json::array();
    case TorrentField::kLeftUntilDone:
      return t.left_until_done;
    case TorrentField::kMagnetLink:
      return MagnetLink(t);
    case TorrentField::kManualAnnounceTime:
      return -1;
    case TorrentField::kMetadataPercentComplete:
      return 1.0;
    case TorrentField::kName:
      return t.name;
    case TorrentField::kPeers: {
      json a = json::array();
      for (const PeerView& p : t.peers) {
        a.push_back({{"address", p.address},
                     {"clientName", p.client_name},
                     {"clientIsChoked", false},
                     {"clientIsInterested", false},
                     {"flagStr", p.is_incoming ? "I" : ""},
                     {"isDownloadingFrom", p.rate_to_client > 0},
                     {"isEncrypted", false},
                     {"isIncoming", p.is_incoming},
                     {"isUploadingTo", p.rate_to_peer > 0},
                     {"isUTP", false},
                     {"peerIsChoked", false},
                     {"peerIsInterested", false},
                     {"port", p.port},
                     {"progress", p.progress},
                     {"rateToClient", p.rate_to_client},
                     {"rateToPeer", p.rate_to_peer}});
      }
      return a;
    }
    case TorrentField::kPeersConnected:
      return t.peers_connected;
    case TorrentField::kPeersFrom:
      return {{"fromCache", 0}, {"fromDht", 0}, {"fromIncoming", 0}, {"fromLpd", 0},
              {"fromLtep", 0},  {"fromPex", 0}, {"fromTracker", 0}};
    case TorrentField::kPeersGettingFromUs:
      return t.peers_getting_from_us;
    case TorrentField::kPeersSendingToUs:
      return t.peers_sending_to_us;
    case TorrentField::kPercentDone:
      return t.size_when_done > 0 ? static_cast<double>(t.size_when_done - t.left_until_done) /
                                        static_cast<double>(t.size_when_done)
                                  : 1.0;
    case TorrentField::kPieceCount:
      return t.piece_count;
    case TorrentField::kPieceSize:
      return t.piece_size;
    case TorrentField::kPriorities: {
      json a = json::array();
      for (const FileView& file : t.files) a.push_back(file.priority);
      return a;
    }
    case TorrentField::kQueuePosition:
      return t.queue_position;
    case TorrentField::kRateDownload:
      return t.rate_download;
    case TorrentField::kRateUpload:
      return t.rate_upload;
    case TorrentField::kRecheckProgress:
      return 0.0;
    case TorrentField::kSecondsDownloading:
      return 0;
    case TorrentField::kSecondsSeeding:
      return 0;
    case TorrentField::kSeedIdleLimit:
      return t.seed_idle_limit;
    case TorrentField::kSeedIdleMode:
      return t.seed_idle_mode;
    case TorrentField::kSeedRatioLimit:
      return t.seed_ratio_limit;
    case TorrentField::kSeedRatioMode:
      return t.seed_ratio_mode;
    case TorrentField::kSizeWhenDone:
      return t.size_when_done;
    case TorrentField::kStartDate:
      return 0;
    case TorrentField::kStatus:
      return static_cast<int>(t.status);
    case TorrentField::kTrackers: {
      json a = json::array();
      for (const TrackerView& tr : t.trackers) {
        a.push_back({{"announce", tr.announce}, {"id", tr.id}, {"scrape", ""}, {"tier", tr.tier}});
      }
      return a;
    }
    case TorrentField::kTrackerStats: {
      json a = json::array();
      for (const TrackerView& tr : t.trackers) {
        a.push_back({{"announce", tr.announce},
                     {"announceState", tr.next_announce_time > 0 ? 1 : 0},
                     {"downloadCount", -1},
                     {"hasAnnounced", tr.has_announced},
                     {"hasScraped", false},
                     {"host", tr.host},
                     {"id", tr.id},
                     {"isBackup", false},
                     {"lastAnnouncePeerCount", tr.last_announce_peer_count},
                     {"lastAnnounceResult", tr.last_announce_result},
                     {"lastAnnounceStartTime", tr.last_announce_time},
                     {"lastAnnounceSucceeded", tr.last_announce_succeeded},
                     {"lastAnnounceTime", tr.last_announce_time},
                     {"lastAnnounceTimedOut", false},
                     {"lastScrapeResult", ""},
                     {"lastScrapeStartTime", 0},
                     {"lastScrapeSucceeded", false},
                     {"lastScrapeTime", 0},
                     {"lastScrapeTimedOut", false},
                     {"leecherCount", tr.leecher_count},
                     {"nextAnnounceTime", tr.next_announce_time},
                     {"nextScrapeTime", 0},
                     {"scrape", ""},
                     {"scrapeState", 0},
                     {"seederCount", tr.seeder_count},
                     {"tier", tr.tier}});
      }
      return a;
    }
    case TorrentField::kTotalSize:
      return t.total_size;
    case TorrentField::kTorrentFile:
      return "";
    case TorrentField::kUploadedEver:
      return t.uploaded_ever;
    case TorrentField::kUploadLimit:
      return t.upload_limit / kSpeedUnitBytes;
    case TorrentField::kUploadLimited:
      return t.upload_limited;
    case TorrentField::kSuperSeed:
      return t.super_seed;
    case TorrentField::kUploadRatio:
      return UploadRatio(t);
    case TorrentField::kWanted: {
      json a = json::array();
      for (const FileView& file : t.files) a.push_back(file.wanted);
      return a;
    }
    case TorrentField::kWebseeds:
      return json::array();
    case TorrentField::kWebseedsSendingToUs:
      return 0;
  }
  return nullptr;
}

}  // namespace torrenty::io::rpc
