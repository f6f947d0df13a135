#include "real_backend/manager/run_plan.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <fstream>
#include <map>

#include "os/atomic_file.hpp"
#include "os/private_dir.hpp"
#include "policy/errors.hpp"
#include "real_backend/model/model_files.hpp"
#include "real_backend/wire/bulk.hpp"
#include "real_backend/wire/file_hash.hpp"
#include "real_backend/wire/transfer.hpp"

namespace hearth::real {

namespace fs = std::filesystem;

namespace {

std::string token_lists(const std::vector<std::vector<std::int32_t>>& lists) {
  std::string out;
  for (const auto& l : lists)
    out += fmt::format("[{}]", fmt::join(l, ","));
  return out;
}

// splitmix64's finalizer: seeds of neighbouring rows far apart.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// What the run needs of a model directory before any worker loads it: its tokenizer's ids for
// the labels, and the tokens generation ends at. Reading it here also refuses a broken model
// before a single GPU is spent on it.
void settle_model_directory(JobContext& c, const PromptEncoder& encoder) {
  std::unique_ptr<ModelFiles> files = directory_files(c.model);
  ModelDirectory model = open_model_directory(*files);
  if (!model.has_tokenizer) {
    throw InputError(fmt::format("{}: context {}: the model directory has no tokenizer.json",
                                 c.model.string(), c.name));
  }
  InferenceSettings& i = c.inference;
  i.label_tokens.clear();
  for (const std::string& label : c.label_texts)
    i.label_tokens.push_back(encoder.continuation(label));
  if (i.task == TaskKind::generate) {
    i.stop_tokens = model.eos_token_ids;
    if (i.stop_tokens.empty() && i.stop_strings.empty()) {
      throw InputError(fmt::format(
          "{}: context {}: the model names no end-of-sequence token (eos_token_id in "
          "generation_config.json or config.json) and the job gives no stop strings: every "
          "inference would run to max_new_tokens",
          c.model.string(), c.name));
    }
  }
}

// What workers check a copy of a context against: a file's size and hash, or a directory's
// manifest (hashing a multi-GB model takes a while: the hashes of files unchanged since an earlier
// run of the job are remembered in its state directory).
struct ModelDigest {
  std::uint64_t size_bytes = 0;
  std::string hash;
  std::vector<PackedFile> files;
  std::string chunk_digests;
};

fs::path chunk_digests_path(const fs::path& state_dir, const std::string& hash) {
  return state_dir / "chunks" / fmt::format("{}-{}.sha256", hash, kDigestChunkBytes);
}

// A model file's size and hash. Remembered in the state directory with the file's time, so that
// a resumed run does not read a multi-GB file again while it is unchanged; read once otherwise,
// its chunk digests (which bulk transfers check) taken in the same pass.
ModelDigest digest_model_file(const fs::path& model, const fs::path& remembered,
                              const fs::path& state_dir) {
  const std::uint64_t size = fs::file_size(model);
  const auto mtime =
      static_cast<std::int64_t>(fs::last_write_time(model).time_since_epoch().count());
  {
    std::ifstream in(remembered);
    std::uint64_t known_size = 0;
    std::int64_t known_mtime = 0;
    std::string hash;
    if (in >> known_size >> known_mtime >> hash && known_size == size && known_mtime == mtime &&
        hash.size() == 64) {
      return {size, hash, {}, {}};
    }
  }
  auto start = std::chrono::steady_clock::now();
  FileHasher hasher;
  std::string digests = chunk_digests(
      size, kDigestChunkBytes, [&](std::uint64_t offset, std::uint32_t length, std::string& out) {
        if (!read_range(model, offset, length, out)) return false;
        hasher.add(out);
        return true;
      });
  if (hasher.size_bytes() != size) throw InputError(fmt::format("{}: cannot read", model.string()));
  ModelDigest d{size, hasher.hex(), {}, std::move(digests)};
  fs::create_directories(chunk_digests_path(state_dir, d.hash).parent_path());
  os::write_file_atomically(chunk_digests_path(state_dir, d.hash), d.chunk_digests, 0600);
  os::write_file_atomically(remembered, fmt::format("{} {} {}\n", size, mtime, d.hash), 0600);
  spdlog::info("{}: hashed with its chunk digests, {:.3f} GB in one read, in {:.1f} s",
               model.string(), static_cast<double>(size) / 1e9,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return d;
}

ModelDigest digest_model(const fs::path& model, const fs::path& state_dir) {
  fs::path remembered = state_dir / "manifests" /
                        (digest_bytes(fs::absolute(model).string()).hash.substr(0, 16) + ".txt");
  fs::create_directories(remembered.parent_path());
  if (!fs::is_directory(model)) return digest_model_file(model, remembered, state_dir);
  auto start = std::chrono::steady_clock::now();
  std::vector<PackedFile> files = pack_directory(model, remembered);
  ModelDigest d{pack_size(files), manifest_hash(files), std::move(files), {}};
  spdlog::info("{}: a manifest of {} files, {:.3f} GB packed, in {:.1f} s", model.string(),
               d.files.size(), static_cast<double>(d.size_bytes) / 1e9,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return d;
}

// The SHA-256 of each chunk of a context, which bulk transfers check (bulk.hpp). Kept in the state
// directory under the context's hash: the same bytes always have the same digests.
std::string chunk_digests_of(const fs::path& model, const ModelDigest& d,
                             const fs::path& state_dir) {
  fs::path kept = chunk_digests_path(state_dir, d.hash);
  std::uint64_t chunks = (d.size_bytes + kDigestChunkBytes - 1) / kDigestChunkBytes;
  std::string digests;
  if (std::error_code e; fs::file_size(kept, e) == chunks * kChunkDigestBytes &&
                         read_range(kept, 0, chunks * kChunkDigestBytes, digests)) {
    return digests;
  }
  auto start = std::chrono::steady_clock::now();
  digests = chunk_digests(d.size_bytes, kDigestChunkBytes,
                          [&](std::uint64_t offset, std::uint32_t length, std::string& out) {
                            if (!d.files.empty())
                              return read_pack_range(model, d.files, offset, length, out).empty();
                            return read_range(model, offset, length, out);
                          });
  if (digests.empty()) throw InputError(fmt::format("{}: cannot read", model.string()));
  fs::create_directories(kept.parent_path());
  os::write_file_atomically(kept, digests, 0600);
  spdlog::info("{}: chunk digests of {:.3f} GB in {:.1f} s", model.string(),
               static_cast<double>(d.size_bytes) / 1e9,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return digests;
}

}  // namespace

RunPlan::RunPlan(JobFile job, bool durable) : job_(std::move(job)) {
  std::map<fs::path, std::shared_ptr<Dataset>> by_path;
  std::map<fs::path, FileDigest> dataset_digests;
  std::map<fs::path, ModelDigest> model_digests;  // contexts may share a multi-GB model
  std::string fingerprint;
  std::vector<std::size_t> row_counts;
  std::map<fs::path, const PromptEncoder*> by_model;  // contexts share a model's tokenizer
  for (JobContext& c : job_.contexts) {
    if (!fs::exists(c.model)) {
      throw InputError(fmt::format("{}: context {}: no such model file {}", job_.file.string(),
                                   c.name, c.model.string()));
    }
    auto [same, first] = by_model.try_emplace(c.model, nullptr);
    auto encoder = std::make_shared<const PromptEncoder>(c, same->second);
    if (first) same->second = encoder.get();
    if (c.format == ModelFormat::hf) settle_model_directory(c, *encoder);
    encoders_.push_back(encoder);
    auto& d = by_path[c.dataset];
    if (!d) {
      d = std::make_shared<Dataset>(read_dataset(c.dataset));
      dataset_digests[c.dataset] = digest_file(c.dataset);
    }
    for (const DatasetRow& row : d->rows) {
      // Reports a row the template cannot fill now; tokenizing waits for the row's task.
      if (c.prompt.empty()) {
        (void)c.prompt.tokens(row, d->source);
      } else {
        (void)c.prompt.render(row, d->source);
      }
    }
    datasets_.push_back(d);
    row_counts.push_back(d->rows.size());
    rows_ += d->rows.size();

    auto [known, added] = model_digests.try_emplace(c.model);
    if (added) {
      known->second = digest_model(c.model, job_.state_dir);
      if (known->second.chunk_digests.empty() && known->second.size_bytes > 0) {
        known->second.chunk_digests = chunk_digests_of(c.model, known->second, job_.state_dir);
      }
    }
    const ModelDigest& model = known->second;
    ContextInfo info;
    info.name = c.name;
    info.size_bytes = model.size_bytes;
    info.hash = model.hash;
    info.files = model.files;
    info.chunk_bytes = kDigestChunkBytes;
    info.chunk_digests = model.chunk_digests;
    info.shared_path = fs::absolute(c.shared_path).string();
    info.inference = c.inference;
    infos_.push_back(info);
    // Everything a result depends on: a resumed run with other settings is refused.
    const InferenceSettings& i = c.inference;
    fingerprint += fmt::format(
        "{} {} {} {} {} {} chat={} system={} [{}] {} {} [{}] [{}] t={} p={} seed={}\n", c.name,
        to_string(i.task), model.hash, dataset_digests[c.dataset].hash, d->rows.size(),
        c.template_text, c.chat, c.system.value_or("-"), fmt::join(i.labels, "|"),
        token_lists(i.label_tokens), i.max_new_tokens, fmt::join(i.stop_tokens, ","),
        fmt::join(i.stop_strings, "|"), i.temperature, i.top_p, c.seed);
  }
  fs::create_directories(job_.state_dir);
  // The state holds results, keys and logs: this user's only. One left open by an older hearth
  // (or by hand) is closed, and the log says so.
  const fs::path db = job_.state_dir / "results.db";
  os::tighten_mode(job_.state_dir / "keys");
  for (const fs::path& p : {job_.state_dir, db, fs::path(db) += "-wal", fs::path(db) += "-shm"}) {
    if (os::tighten_mode(p))
      spdlog::warn("{}: others could read it; it is now this user's only", p.string());
  }
  store_ = std::make_unique<ResultStore>(job_.state_dir / "results.db", fingerprint, durable);
  std::vector<std::vector<bool>> done = store_->done_rows(row_counts);
  pending_.resize(job_.contexts.size());
  done_before_by_.assign(job_.contexts.size(), 0);
  for (std::size_t c = 0; c < done.size(); ++c) {
    for (std::uint64_t r = 0; r < done[c].size(); ++r) {
      if (done[c][r]) {
        ++done_before_;
        ++done_before_by_[c];
      } else {
        pending_[c].push_back(r);
      }
    }
  }
}

Workload RunPlan::workload() const {
  Workload w;
  for (std::size_t c = 0; c < job_.contexts.size(); ++c) {
    w.add(ContextSpec{0, job_.contexts[c].name, static_cast<double>(infos_[c].size_bytes),
                      job_.contexts[c].init_s},
          pending_[c].size());
  }
  return w;
}

std::vector<std::uint64_t> RunPlan::rows_of(ContextId c, std::uint64_t first,
                                            std::uint64_t count) const {
  const auto& p = pending_[c];
  return {p.begin() + static_cast<std::ptrdiff_t>(first),
          p.begin() + static_cast<std::ptrdiff_t>(first + count)};
}

std::vector<std::vector<std::int32_t>> RunPlan::inputs(ContextId c, std::uint64_t first,
                                                       std::uint64_t count) const {
  std::vector<std::vector<std::int32_t>> out;
  out.reserve(count);
  const Dataset& d = *datasets_[c];
  for (std::uint64_t i = first; i < first + count; ++i)
    out.push_back(encoders_[c]->encode(d.rows[pending_[c][i]], d.source));
  return out;
}

std::vector<std::uint64_t> RunPlan::seeds(ContextId c, std::uint64_t first,
                                          std::uint64_t count) const {
  const JobContext& context = job_.contexts[c];
  if (context.inference.task != TaskKind::generate || context.inference.temperature <= 0) return {};
  std::uint64_t salt = mix(context.seed ^ std::hash<std::string>{}(context.name));
  std::vector<std::uint64_t> out;
  out.reserve(count);
  for (std::uint64_t i = first; i < first + count; ++i)
    out.push_back(mix(salt ^ pending_[c][i]));
  return out;
}

void RunPlan::write_output() {
  std::vector<std::string> names;
  std::vector<const Dataset*> datasets;
  for (std::size_t c = 0; c < job_.contexts.size(); ++c) {
    names.push_back(job_.contexts[c].name);
    datasets.push_back(datasets_[c].get());
  }
  fs::create_directories(job_.output.parent_path());
  store_->write_output(job_.output, names, datasets);
}

}  // namespace hearth::real
