#include "real_backend/context_cache.hpp"

#include <fmt/format.h>

#include "real_backend/transfer.hpp"

namespace hearth::real {

namespace fs = std::filesystem;

ContextCache::ContextCache(fs::path dir) : dir_(std::move(dir)) {
  fs::create_directories(dir_);
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

void ContextCache::device_ready(ContextId c, std::shared_ptr<LoadedModel> model) {
  std::lock_guard lock(mutex_);
  entries_[c].device = true;
  entries_[c].model = std::move(model);
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

void ContextCache::evict(ContextId c, Tier tier) {
  std::lock_guard lock(mutex_);
  Entry& e = entries_[c];
  switch (tier) {
    case Tier::gpu:
      e.device = false;
      e.model.reset();
      break;
    case Tier::host:
      e.host.reset();
      break;
    case Tier::disk: {
      e.disk = false;
      std::error_code ec;
      fs::remove(file(c), ec);
      break;
    }
  }
}

void ContextCache::clear() {
  std::lock_guard lock(mutex_);
  entries_.clear();
  // Only this cache's own files: the directory is the user's choice and may hold others.
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(dir_, ec)) {
    std::string name = f.path().filename().string();
    if (name.rfind("context-", 0) == 0 && name.find(".bin") != std::string::npos) {
      fs::remove(f.path(), ec);
    }
  }
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
  if (!read_range(file(c), offset, length, out)) {
    return fmt::format("cannot read context {} at {}", c, offset);
  }
  return "";
}

}  // namespace hearth::real
