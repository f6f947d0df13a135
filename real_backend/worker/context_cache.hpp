#pragma once
// The tiers of one worker: context files in its cache directory (disk), their bytes in host
// memory (host), models built on its device (gpu). Thread-safe: the executor fills it, the main
// thread evicts, the peer server reads from it. What an eviction drops is freed on a thread of
// the cache's own: freeing gigabytes of device or host memory, or deleting a file the kernel is
// still writing back, can take seconds, and the worker's loop must keep talking to the manager.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "real_backend/model/model_files.hpp"
#include "real_backend/model/model_runtime.hpp"
#include "real_backend/wire/protocol.hpp"

namespace hearth::text {
class Tokenizer;
}

namespace hearth::real {

// A directory context's files as slices of its pack (its file() on disk, its host() bytes), for
// packed_files() (model_files.hpp). Empty for a single-file context.
std::vector<FileSlice> file_slices(const ContextInfo& info);

// A directory context is cached as its pack, one file like any other context's: fetches, peers'
// reads and evictions see byte ranges of it.
class ContextCache {
 public:
  explicit ContextCache(std::filesystem::path dir);
  ~ContextCache();  // waits until everything evicted is freed

  std::filesystem::path file(ContextId c) const;

  void set_info(ContextId c, const ContextInfo& info);
  std::optional<ContextInfo> info(ContextId c) const;

  void disk_ready(ContextId c);
  void host_ready(ContextId c, std::shared_ptr<const std::string> bytes);
  // `model` is null for a context without a model (bytes only); `tokenizer` is a model
  // directory's (null for byte-level models), to decode what it generates.
  void device_ready(ContextId c, std::shared_ptr<LoadedModel> model,
                    std::shared_ptr<const text::Tokenizer> tokenizer = nullptr);

  std::shared_ptr<const std::string> host(ContextId c) const;
  bool on_device(ContextId c) const;
  std::shared_ptr<LoadedModel> model(ContextId c) const;
  std::shared_ptr<const text::Tokenizer> tokenizer(ContextId c) const;

  // Drops `c` from `tier` at once; the memory is freed, or the file deleted, soon after on the
  // cache's thread. Users holding a copy keep it alive.
  void evict(ContextId c, Tier tier);
  // Drops everything (deleting only its own files from the directory), as a worker that starts
  // again must.
  void clear();
  // Waits until everything evicted so far is freed: a stage calls it before it fills the room.
  void wait_freed();

  // For a peer: bytes [offset, offset + length) of `c` from disk or host memory into `out`.
  // Returns an error text, empty on success.
  std::string read(ContextId c, std::uint64_t offset, std::uint32_t length, std::string& out) const;

 private:
  struct Entry {
    std::optional<ContextInfo> info;
    bool disk = false;
    std::shared_ptr<const std::string> host;
    bool device = false;
    std::shared_ptr<LoadedModel> model;
    std::shared_ptr<const text::Tokenizer> tokenizer;
  };
  class Reaper;

  std::filesystem::path dir_;
  mutable std::mutex mutex_;
  std::map<ContextId, Entry> entries_;
  std::uint64_t evicted_files_ = 0;  // names the files awaiting deletion
  std::unique_ptr<Reaper> reaper_;
};

}  // namespace hearth::real
