#include "real_backend/wire/key_registry.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "os/atomic_file.hpp"
#include "os/fd.hpp"
#include "policy/errors.hpp"

namespace hearth::real {

namespace fs = std::filesystem;

namespace {

bool valid_label(const std::string& label) {
  return !label.empty() && label.size() <= 100 &&
         std::all_of(label.begin(), label.end(), [](unsigned char c) {
           return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':' || c == '@';
         });
}

bool valid_z85_key(const std::string& key) {
  static const std::string alphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  return key.size() == 40 && key.find_first_not_of(alphabet) == std::string::npos;
}

// Holds the registry's lock for the life of the object.
class RegistryLock {
 public:
  explicit RegistryLock(const fs::path& registry) {
    fs::path lock = registry;
    lock += ".lock";
    fd_.reset(::open(lock.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd_.is_open() || ::flock(fd_.get(), LOCK_EX) != 0) {
      throw InputError(fmt::format("{}: cannot lock: {}", lock.string(), std::strerror(errno)));
    }
  }

 private:
  os::Fd fd_;
};

void write_registry(const fs::path& registry, const std::vector<KeyEntry>& keys) {
  std::string text = "# hearth worker keys: PUBLIC_KEY active|revoked LABEL (hearth keys list)\n";
  for (const KeyEntry& k : keys)
    text += fmt::format("{} {} {}\n", k.public_z85, k.revoked ? "revoked" : "active", k.label);
  os::write_file_atomically(registry, text, 0600);
}

// Changes the registry under its lock: `change` edits the keys read; they are written back.
template <class Change>
void change_registry(const fs::path& registry, Change change) {
  fs::create_directories(registry.parent_path());
  RegistryLock lock(registry);
  std::vector<KeyEntry> keys = read_key_registry(registry);
  change(keys);
  write_registry(registry, keys);
}

}  // namespace

std::vector<KeyEntry> read_key_registry(const fs::path& registry) {
  std::vector<KeyEntry> keys;
  std::ifstream in(registry);
  if (!in) {
    if (fs::exists(registry)) throw InputError(fmt::format("{}: cannot read", registry.string()));
    return keys;
  }
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream words(line);
    KeyEntry k;
    std::string state, extra;
    if (!(words >> k.public_z85 >> state >> k.label) || (words >> extra)) {
      throw InputError(
          fmt::format("{}:{}: expected PUBLIC_KEY active|revoked LABEL", registry.string(), n));
    }
    if (!valid_z85_key(k.public_z85)) {
      throw InputError(
          fmt::format("{}:{}: {} is not a 40-character Z85 key", registry.string(), n, k.label));
    }
    if (state != "active" && state != "revoked") {
      throw InputError(fmt::format("{}:{}: state \"{}\", expected active or revoked",
                                   registry.string(), n, state));
    }
    k.revoked = state == "revoked";
    keys.push_back(std::move(k));
  }
  return keys;
}

void register_keys(const fs::path& registry, const std::vector<std::string>& keys,
                   const std::string& label) {
  if (!valid_label(label)) {
    throw InputError(fmt::format("key label \"{}\": use 1 to 100 letters, digits and - _ . : @",
                                 label.substr(0, 120)));
  }
  change_registry(registry, [&](std::vector<KeyEntry>& entries) {
    for (const KeyEntry& e : entries) {
      if (!e.revoked && e.label == label) {
        throw InputError(fmt::format(
            "{}: an active key is labelled {} already: revoke it or choose another label",
            registry.string(), label));
      }
    }
    for (const std::string& k : keys)
      entries.push_back({k, false, label});
  });
}

int relabel_keys(const fs::path& registry, const std::map<std::string, std::string>& labels) {
  if (labels.empty()) return 0;
  int relabelled = 0;
  change_registry(registry, [&](std::vector<KeyEntry>& entries) {
    std::set<std::string> in_use;
    for (const KeyEntry& e : entries) {
      if (!e.revoked && !labels.count(e.public_z85)) in_use.insert(e.label);
    }
    for (KeyEntry& e : entries) {
      auto it = labels.find(e.public_z85);
      if (it == labels.end()) continue;
      if (!valid_label(it->second) || (!e.revoked && in_use.count(it->second))) {
        spdlog::warn("{}: key {} keeps its label: {} is not valid or is in use", registry.string(),
                     e.label, it->second.substr(0, 120));
        continue;
      }
      e.label = it->second;
      if (!e.revoked) in_use.insert(e.label);
      ++relabelled;
    }
  });
  return relabelled;
}

int revoke_keys(const fs::path& registry, const std::string& which) {
  int revoked = 0;
  change_registry(registry, [&](std::vector<KeyEntry>& entries) {
    for (KeyEntry& k : entries) {
      if (!k.revoked && (k.label == which || k.public_z85 == which)) {
        k.revoked = true;
        ++revoked;
      }
    }
  });
  return revoked;
}

int revoke_keys(const fs::path& registry, const std::vector<std::string>& keys) {
  if (keys.empty()) return 0;
  std::set<std::string> wanted(keys.begin(), keys.end());
  int revoked = 0;
  change_registry(registry, [&](std::vector<KeyEntry>& entries) {
    for (KeyEntry& k : entries) {
      if (!k.revoked && wanted.count(k.public_z85)) {
        k.revoked = true;
        ++revoked;
      }
    }
  });
  return revoked;
}

namespace {

void write_worker_credentials(const ManagerKeys& keys, const KeyPair& own, const fs::path& file) {
  if (file.has_parent_path() && !fs::exists(file.parent_path())) {
    fs::create_directories(file.parent_path());
    fs::permissions(file.parent_path(), fs::perms::owner_all);
  }
  write_credentials(file, {keys.manager.public_z85, own, keys.workers.peer});
}

}  // namespace

KeyPair issue_worker_key(const ManagerKeys& keys, const std::string& label, const fs::path& file) {
  KeyPair own = make_key_pair();
  // The key is registered before its file exists: a worker cannot hold a key the manager
  // would not know.
  register_keys(keys.registry, {own.public_z85}, label);
  write_worker_credentials(keys, own, file);
  return own;
}

std::vector<std::string> issue_worker_keys(const ManagerKeys& keys, const std::string& label_prefix,
                                           int count, const fs::path& dir) {
  std::vector<KeyPair> pairs;
  for (int i = 0; i < count; ++i)
    pairs.push_back(make_key_pair());
  std::vector<std::string> publics;
  for (const KeyPair& p : pairs)
    publics.push_back(p.public_z85);
  change_registry(keys.registry, [&](std::vector<KeyEntry>& entries) {
    for (int i = 0; i < count; ++i) {
      std::string label = fmt::format("{}{}", label_prefix, i);
      if (!valid_label(label))
        throw InputError(fmt::format("key label \"{}\" is not valid", label));
      entries.push_back({publics[i], false, label});
    }
  });
  for (int i = 0; i < count; ++i)
    write_worker_credentials(keys, pairs[i], dir / fmt::format("{}.key", i));
  return publics;
}

KeyRing::KeyRing(fs::path registry) : registry_(std::move(registry)) {
  reload_if_changed();
}

bool KeyRing::reload_if_changed() {
  struct stat st {};
  if (::stat(registry_.c_str(), &st) != 0) {
    if (seen_size_ < 0) return false;  // never there
    st = {};
  }
  if (st.st_mtim.tv_sec == seen_.tv_sec && st.st_mtim.tv_nsec == seen_.tv_nsec &&
      st.st_ino == seen_inode_ && st.st_size == seen_size_) {
    return false;
  }
  seen_ = st.st_mtim;
  seen_inode_ = st.st_ino;
  seen_size_ = st.st_size;
  try {
    std::map<std::string, KeyEntry> keys;
    for (KeyEntry& k : read_key_registry(registry_))
      keys[k.public_z85] = std::move(k);
    keys_ = std::move(keys);
    ++generation_;
  } catch (const InputError& e) {
    spdlog::error("{} (keeping the keys read before)", e.what());
    return false;
  }
  return true;
}

std::string KeyRing::refusal(const std::string& public_z85) const {
  auto it = keys_.find(public_z85);
  if (it == keys_.end()) return fmt::format("unknown key {}", public_z85);
  if (it->second.revoked) return fmt::format("revoked key {}", it->second.label);
  return "";
}

bool KeyRing::revoked(const std::string& public_z85) const {
  auto it = keys_.find(public_z85);
  return it != keys_.end() && it->second.revoked;
}

std::string KeyRing::label(const std::string& public_z85) const {
  auto it = keys_.find(public_z85);
  return it == keys_.end() ? "" : it->second.label;
}

}  // namespace hearth::real
