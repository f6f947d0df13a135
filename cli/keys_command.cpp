// `hearth keys issue|revoke|list STATE`: the worker keys a job's manager admits
// (real_backend/wire/key_registry.hpp). A key is issued per worker (or per batch job), its
// credentials file handed to that worker alone, and revoked when it is no longer wanted or may
// have leaked: a running manager then refuses its connections and drops a worker that holds it
// within a tick of its loop.

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "os/private_dir.hpp"
#include "policy/errors.hpp"
#include "real_backend/wire/key_registry.hpp"

namespace hearth::cli {

namespace {

namespace fs = std::filesystem;

struct KeysArgs {
  std::string state;
  std::string label;
  std::string output;
  std::string which;
  bool json = false;
};

// The keys of the job whose state directory is `state`, created (this user's only) if new.
real::ManagerKeys keys_of(const std::string& state) {
  os::require_private_dir(state);
  os::require_private_dir(fs::path(state) / "keys");
  return real::load_or_create_keys(fs::path(state) / "keys");
}

void issue(const KeysArgs& a) {
  real::ManagerKeys keys = keys_of(a.state);
  fs::path file = a.output.empty() ? fs::path(a.state) / "keys" / "issued" / (a.label + ".key")
                                   : fs::path(a.output);
  if (fs::exists(fs::symlink_status(file))) {
    throw InputError(fmt::format("{}: exists already; choose another file", file.string()));
  }
  real::KeyPair key = real::issue_worker_key(keys, a.label, file);
  fmt::print("issued key {} ({}): hearth worker --keys {}\n", a.label, key.public_z85,
             file.string());
}

void revoke(const KeysArgs& a) {
  real::ManagerKeys keys = keys_of(a.state);
  int n = real::revoke_keys(keys.registry, a.which);
  if (n == 0) {
    throw InputError(
        fmt::format("{}: no active key is labelled or is {}", keys.registry.string(), a.which));
  }
  fmt::print("revoked {} key{} {}: a running manager drops its workers\n", n, n == 1 ? "" : "s",
             a.which);
}

void list(const KeysArgs& a) {
  real::ManagerKeys keys = keys_of(a.state);
  std::vector<real::KeyEntry> entries = real::read_key_registry(keys.registry);
  if (a.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const real::KeyEntry& e : entries)
      out.push_back({{"label", e.label}, {"public", e.public_z85}, {"revoked", e.revoked}});
    fmt::print("{}\n", out.dump());
    return;
  }
  for (const real::KeyEntry& e : entries)
    fmt::print("{:<8} {} {}\n", e.revoked ? "revoked" : "active", e.public_z85, e.label);
}

}  // namespace

void add_keys_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("keys", "Issue, revoke and list the worker keys a job admits");
  cmd->require_subcommand(1);
  auto a = std::make_shared<KeysArgs>();
  auto* issue_cmd = cmd->add_subcommand(
      "issue", "Issue a key for one worker and write its credentials file (mode 0600)");
  issue_cmd->add_option("state", a->state, "the job's state directory")->required();
  issue_cmd->add_option("--label", a->label, "what the key is for (unique among active keys)")
      ->required();
  issue_cmd->add_option("-o,--output", a->output,
                        "the credentials file (default STATE/keys/issued/LABEL.key)");
  issue_cmd->callback([a] { issue(*a); });
  auto* revoke_cmd = cmd->add_subcommand(
      "revoke", "Revoke the active keys with this label (or this public key), at once");
  revoke_cmd->add_option("state", a->state, "the job's state directory")->required();
  revoke_cmd->add_option("which", a->which, "a label or a public key")->required();
  revoke_cmd->callback([a] { revoke(*a); });
  auto* list_cmd = cmd->add_subcommand("list", "List every key issued, active or revoked");
  list_cmd->add_option("state", a->state, "the job's state directory")->required();
  list_cmd->add_flag("--json", a->json, "as a JSON array");
  list_cmd->callback([a] { list(*a); });
}

}  // namespace hearth::cli
