#pragma once
// The worker keys a manager admits: STATE/keys/registry, one line per key ever issued,
//
//   PUBLIC_Z85 active|revoked LABEL
//
// (LABEL: what the key is for, "shared" for worker.key's, "slurm-4242_3" for a batch job's).
// `hearth keys issue` and the batch factories add keys, `hearth keys revoke` and the factories
// (when a job ends) revoke them; the manager re-reads the file when it changes, refuses a revoked
// key's connections and drops a worker already joined with one. Every change is made under a lock
// (registry.lock beside it) and written whole (renamed over the old file), so that issuing from
// the manager's factory and revoking from the operator's shell never lose each other's lines.

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "real_backend/wire/auth.hpp"

namespace hearth::real {

struct KeyEntry {
  std::string public_z85;
  bool revoked = false;
  std::string label;
};

// Every key in `registry`, in the order issued; none if it does not exist. Throws InputError
// ("registry:3: ...") if a line is malformed.
std::vector<KeyEntry> read_key_registry(const std::filesystem::path& registry);

// Adds `keys` as active keys labelled `label` (letters, digits, '-', '_', '.', ':', '@', at most
// 100 characters; throws InputError otherwise), creating the registry (mode 0600) if need be.
void register_keys(const std::filesystem::path& registry, const std::vector<std::string>& keys,
                   const std::string& label);

// Gives keys new labels (public key -> label), as a batch factory does once it knows the job
// each key went to. A label that is not valid or that another active key holds is left as it
// was, and logged; returns how many keys were relabelled.
int relabel_keys(const std::filesystem::path& registry,
                 const std::map<std::string, std::string>& labels);

// Revokes the active keys whose label or public key is `which`; returns how many.
int revoke_keys(const std::filesystem::path& registry, const std::string& which);
// Revokes these public keys (those not active are left); returns how many were revoked.
int revoke_keys(const std::filesystem::path& registry, const std::vector<std::string>& keys);

// Issues a fresh key pair labelled `label` for a worker of the manager whose keys are `keys` and
// writes its credentials file (`file`, mode 0600, its folder created 0700): the manager's public
// key, the worker's own pair, and the peer pair every worker shares. Returns the worker's pair.
KeyPair issue_worker_key(const ManagerKeys& keys, const std::string& label,
                         const std::filesystem::path& file);
// `count` keys in one change of the registry, their files dir/0.key ... dir/(count-1).key, each
// labelled `label_prefix` + index; returns their public keys in that order.
std::vector<std::string> issue_worker_keys(const ManagerKeys& keys, const std::string& label_prefix,
                                           int count, const std::filesystem::path& dir);

// What a manager admits, read again whenever the file changes.
class KeyRing {
 public:
  explicit KeyRing(std::filesystem::path registry);
  // Re-reads the registry if it changed since the last read; returns true if it did. A registry
  // that cannot be read or parsed keeps the keys read before (and is logged once per change).
  bool reload_if_changed();
  // Empty if `public_z85` may connect, else why not ("revoked key slurm-12_3", "unknown key ...").
  std::string refusal(const std::string& public_z85) const;
  bool revoked(const std::string& public_z85) const;
  // The label of a key, or "" if unknown.
  std::string label(const std::string& public_z85) const;
  // How many times the keys were read: a reader that remembers it knows when they changed.
  std::uint64_t generation() const { return generation_; }

 private:
  std::filesystem::path registry_;
  struct timespec seen_ {};
  ino_t seen_inode_ = 0;
  off_t seen_size_ = -1;
  std::map<std::string, KeyEntry> keys_;
  std::uint64_t generation_ = 0;
};

}  // namespace hearth::real
