// The torrent-get fields of Transmission's rpc-spec (version 16): which names exist, which costly
// parts of a TorrentView each needs, and its value. Fields torrenty has no notion of (labels, web
// seeds, bandwidth priority, ...) get the neutral value Transmission reports when they are unused.
#pragma once

#include <optional>
#include <string_view>

#include "io/rpc/rpc_backend.h"
#include "nlohmann/json_fwd.hpp"

namespace torrenty::io::rpc {

enum class TorrentField {
  kActivityDate,
  kAddedDate,
  kBandwidthPriority,
  kComment,
  kCorruptEver,
  kCreator,
  kDateCreated,
  kDesiredAvailable,
  kDoneDate,
  kDownloadDir,
  kDownloadedEver,
  kDownloadLimit,
  kDownloadLimited,
  kEditDate,
  kError,
  kErrorString,
  kEta,
  kEtaIdle,
  kFiles,
  kFileStats,
  kHashString,
  kHaveUnchecked,
  kHaveValid,
  kHonorsSessionLimits,
  kId,
  kIsFinished,
  kIsPrivate,
  kIsStalled,
  kLabels,
  kLeftUntilDone,
  kMagnetLink,
  kManualAnnounceTime,
  kMetadataPercentComplete,
  kName,
  kPeers,
  kPeersConnected,
  kPeersFrom,
  kPeersGettingFromUs,
  kPeersSendingToUs,
  kPercentDone,
  kPieceCount,
  kPieceSize,
  kPriorities,
  kQueuePosition,
  kRateDownload,
  kRateUpload,
  kRecheckProgress,
  kSecondsDownloading,
  kSecondsSeeding,
  kSeedIdleLimit,
  kSeedIdleMode,
  kSeedRatioLimit,
  kSeedRatioMode,
  kSizeWhenDone,
  kStartDate,
  kStatus,
  kSuperSeed,
  kTrackers,
  kTrackerStats,
  kTotalSize,
  kTorrentFile,
  kUploadedEver,
  kUploadLimit,
  kUploadLimited,
  kUploadRatio,
  kWanted,
  kWebseeds,
  kWebseedsSendingToUs,
};

// nullopt for a name the spec does not define.
std::optional<TorrentField> FindTorrentField(std::string_view name);
// Marks the files, trackers or peers the field is built from.
void AddNeeds(TorrentField field, ViewFields* need);
// Speeds are KiB/s (kSpeedUnitBytes), like the rest of the protocol.
nlohmann::json TorrentFieldValue(const TorrentView& torrent, TorrentField field);

}  // namespace torrenty::io::rpc
