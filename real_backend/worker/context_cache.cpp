#include "real_backend/worker/context_cache.hpp"

#include <fmt/format.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "real_backend/wire/transfer.hpp"

namespace hearth::real {

namespace fs = std::filesystem;

namespace {

// A cache file in its directory: a context's own, a partial copy, or one awaiting deletion.
bool own_file(const std::string& name) {
  return (name.rfind("context-", 0) == 0 || name.rfind("evicted-", 0) == 0) &&
         name.find(".bin") != std::string::npos;
}

}  // namespace

std::vector<FileSlice> file_slices(const ContextInfo& info) {
  std::vector<FileSlice> slices;
  slices.reserve(info.files.size());
  for (const PackedFile& f : info.files)
    slices.push_back({f.name, f.offset, f.size});
  return slices;
}

// One thread that runs, in order, the work handed to it: the freeing of what was evicted.
class ContextCache::Reaper {
 public:
  Reaper() : thread_([this] { loop(); }) {}
  ~Reaper() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  void add(std::function<void()> work) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(work));
    }
    wake_.notify_all();
  }

  void wait_empty() {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return queue_.empty() && !busy_; });
  }

 private:
  void loop() {
    std::unique_lock lock(mutex_);
    while (true) {
      wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything is freed
      std::function<void()> work = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      lock.unlock();
      work();
      work = nullptr;  // whatever it captured is freed here, unlocked
      lock.lock();
      busy_ = false;
      done_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::deque<std::function<void()>> queue_;
  bool busy_ = false;
  bool stop_ = false;
  std::thread thread_;
};

ContextCache::ContextCache(fs::path dir)
    : dir_(std::move(dir)), reaper_(std::make_unique<Reaper>()) {
  fs::create_directories(dir_);
}

ContextCache::~ContextCache() = default;

void ContextCache::wait_freed() {
  reaper_->wait_empty();
}

fs::path ContextCache::file(ContextId c) const {
  return dir_ / fmt::format("context-{}.bin", c);
}

void ContextCache::set_info(ContextId c, const ContextInfo& info) {
  std::lock_guard lock(mutex_);
  entries_[c].info = info;
}

std::optional<ContextInfo> ContextCache::info(ContextId c) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(c);
  return it == entries_.end() ? std::nullopt : it->second.info;
}

void ContextCache::disk_ready(ContextId c) {
  std::lock_guard lock(mutex_);
  entries_[c].disk = true;
}

void ContextCache::host_ready(ContextId c, std::shared_ptr<const std::string> bytes) {
  std::lock_guard lock(mutex_);
  entries_[c].host = std::move(bytes);
}

void ContextCache::device_ready(ContextId c, std::shared_ptr<LoadedModel> model,
                                std::shared_ptr<const text::Tokenizer> tokenizer) {
  std::lock_guard lock(mutex_);
  entries_[c].device = true;
  entries_[c].model = std::move(model);
  entries_[c].tokenizer = std::move(tokenizer);
}

std::shared_ptr<const std::string> ContextCache::host(ContextId c) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(c);
  return it == entries_.end() ? nullptr : it->second.host;
}

bool ContextCache::on_device(ContextId c) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(c);
  return it != entries_.end() && it->second.device;
}

std::shared_ptr<LoadedModel> ContextCache::model(ContextId c) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(c);
  return it == entries_.end() ? nullptr : it->second.model;
}

std::shared_ptr<const text::Tokenizer> ContextCache::tokenizer(ContextId c) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(c);
  return it == entries_.end() ? nullptr : it->second.tokenizer;
}

void ContextCache::evict(ContextId c, Tier tier) {
  std::shared_ptr<LoadedModel> model;
  std::shared_ptr<const std::string> host;
  fs::path doomed;
  {
    std::lock_guard lock(mutex_);
    Entry& e = entries_[c];
    switch (tier) {
      case Tier::gpu:
        e.device = false;
        model = std::move(e.model);
        e.tokenizer.reset();
        break;
      case Tier::host:
        host = std::move(e.host);
        break;
      case Tier::disk: {
        e.disk = false;
        // Renamed at once, so that a new copy of `c` may land while the old one is deleted.
        doomed = dir_ / fmt::format("evicted-{}-{}.bin", c, evicted_files_++);
        std::error_code ec;
        fs::rename(file(c), doomed, ec);
        if (ec) {  // not there (nothing to do), or cannot be renamed: deleted here
          doomed.clear();
          fs::remove(file(c), ec);
        }
        break;
      }
    }
  }
  reaper_->add([model = std::move(model), host = std::move(host), doomed] {
    std::error_code ec;
    if (!doomed.empty()) fs::remove(doomed, ec);
  });
}

void ContextCache::clear() {
  std::map<ContextId, Entry> dropped;
  std::vector<fs::path> files;
  {
    std::lock_guard lock(mutex_);
    dropped.swap(entries_);
    // Only this cache's own files: the directory is the user's choice and may hold others.
    std::error_code ec;
    for (const auto& f : fs::directory_iterator(dir_, ec)) {
      if (own_file(f.path().filename().string())) files.push_back(f.path());
    }
    for (fs::path& f : files) {
      if (f.filename().string().rfind("context-", 0) != 0) continue;  // already evicted
      fs::path doomed = dir_ / fmt::format("evicted-{}.bin", evicted_files_++);
      fs::rename(f, doomed, ec);
      if (!ec) f = doomed;
    }
  }
  reaper_->add([dropped = std::move(dropped), files = std::move(files)] {
    std::error_code ec;
    for (const fs::path& f : files)
      fs::remove(f, ec);
  });
}

std::string ContextCache::read(ContextId c, std::uint64_t offset, std::uint32_t length,
                               std::string& out) const {
  std::shared_ptr<const std::string> host;
  bool disk = false;
  {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(c);
    if (it != entries_.end()) {
      host = it->second.host;
      disk = it->second.disk;
    }
  }
  if (host) {
    if (offset >= host->size()) return fmt::format("offset {} is past the end", offset);
    out.assign(*host, offset, length);
    return "";
  }
  if (!disk) return fmt::format("context {} is not here", c);
  if (!read_cached_range(file(c), offset, length, out)) {
    return fmt::format("cannot read context {} at {}", c, offset);
  }
  return "";
}

}  // namespace hearth::real
