#include "real_backend/model/model_files.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "policy/errors.hpp"

namespace hearth::real {

namespace {

using nlohmann::json;

// A file name from a hostile index: relative, '/'-separated, no empty, "." or ".." part.
bool is_safe_name(std::string_view name) {
  if (name.empty() || name.front() == '/' || name.find('\\') != std::string_view::npos ||
      name.find('\0') != std::string_view::npos) {
    return false;
  }
  while (!name.empty()) {
    std::size_t slash = name.find('/');
    std::string_view part = name.substr(0, slash);
    if (part.empty() || part == "." || part == "..") return false;
    name = slash == std::string_view::npos ? std::string_view() : name.substr(slash + 1);
    if (slash != std::string_view::npos && name.empty()) return false;
  }
  return true;
}

class DirectoryFiles : public ModelFiles {
 public:
  explicit DirectoryFiles(std::filesystem::path dir) : dir_(std::move(dir)) {}

  std::string where() const override {
    std::string s = dir_.string();
    return s.ends_with('/') ? s : s + "/";
  }
  bool has(const std::string& name) const override {
    std::error_code ec;
    return is_safe_name(name) && std::filesystem::is_regular_file(dir_ / name, ec);
  }
  std::uint64_t size(const std::string& name) const override {
    check(name);
    std::error_code ec;
    std::uint64_t n = std::filesystem::file_size(dir_ / name, ec);
    if (ec) throw InputError(fmt::format("{}{}: {}", where(), name, ec.message()));
    return n;
  }
  std::string read(const std::string& name) const override {
    return read_range(name, 0, size(name));
  }
  std::string read_range(const std::string& name, std::uint64_t offset,
                         std::uint64_t length) const override {
    const std::uint64_t file_size = size(name);
    if (offset > file_size || length > file_size - offset) {
      throw InputError(fmt::format("{}{}: bytes [{}, +{}) are beyond its {} bytes", where(), name,
                                   offset, length, file_size));
    }
    std::ifstream in(dir_ / name, std::ios::binary);
    std::string bytes(length, '\0');
    in.seekg(static_cast<std::streamoff>(offset));
    in.read(bytes.data(), static_cast<std::streamsize>(length));
    if (!in || static_cast<std::uint64_t>(in.gcount()) != length) {
      throw InputError(fmt::format("{}{}: cannot read", where(), name));
    }
    return bytes;
  }
  FileSlice slice(const std::string& name) const override { return {name, 0, size(name)}; }
  std::filesystem::path path(const std::string& name) const override {
    check(name);
    return dir_ / name;
  }

 private:
  void check(const std::string& name) const {
    if (!is_safe_name(name)) throw InputError(fmt::format("{}: bad file name '{}'", where(), name));
  }
  std::filesystem::path dir_;
};

class PackedFiles : public ModelFiles {
 public:
  PackedFiles(std::shared_ptr<const std::string> pack, std::vector<FileSlice> files,
              std::string where)
      : pack_(std::move(pack)), where_(std::move(where)) {
    for (FileSlice& f : files) {
      if (!is_safe_name(f.name))
        throw InputError(fmt::format("{}: bad file name '{}'", where_, f.name));
      if (f.offset > pack_->size() || f.size > pack_->size() - f.offset) {
        throw InputError(fmt::format("{}: file {} at [{}, +{}) is beyond the {} bytes packed",
                                     where_, f.name, f.offset, f.size, pack_->size()));
      }
      std::string name = f.name;
      if (!files_.emplace(name, std::move(f)).second) {
        throw InputError(fmt::format("{}: file {} is packed twice", where_, name));
      }
    }
  }

  std::string where() const override { return where_; }
  bool has(const std::string& name) const override { return files_.contains(name); }
  std::uint64_t size(const std::string& name) const override { return slice(name).size; }
  std::string read(const std::string& name) const override {
    const FileSlice& f = find(name);
    return pack_->substr(f.offset, f.size);
  }
  std::string read_range(const std::string& name, std::uint64_t offset,
                         std::uint64_t length) const override {
    const FileSlice& f = find(name);
    if (offset > f.size || length > f.size - offset) {
      throw InputError(fmt::format("{}: {}: bytes [{}, +{}) are beyond its {} bytes", where_, name,
                                   offset, length, f.size));
    }
    return pack_->substr(f.offset + offset, length);
  }
  std::shared_ptr<const std::string> pack() const override { return pack_; }
  FileSlice slice(const std::string& name) const override { return find(name); }
  std::filesystem::path path(const std::string&) const override { return {}; }

 private:
  const FileSlice& find(const std::string& name) const {
    auto it = files_.find(name);
    if (it == files_.end()) throw InputError(fmt::format("{}: no file {}", where_, name));
    return it->second;
  }
  std::shared_ptr<const std::string> pack_;
  std::string where_;
  std::map<std::string, FileSlice> files_;
};

// Where messages name a file of `files`: "models/smol/config.json", "context fever-1: config.json".
std::string name_in(const ModelFiles& files, const std::string& name) {
  std::string w = files.where();
  return w.ends_with('/') ? w + name : w + ": " + name;
}

json read_json(const ModelFiles& files, const std::string& name) {
  try {
    return json::parse(files.read(name));
  } catch (const json::exception& e) {
    throw InputError(fmt::format("{}: not JSON: {}", name_in(files, name), e.what()));
  }
}

SafetensorsHeader read_header(const ModelFiles& files, const std::string& name) {
  const std::string what = name_in(files, name);
  const std::uint64_t file_size = files.size(name);
  if (file_size < 8) throw InputError(what + ": too short for a safetensors file");
  const std::uint64_t end = safetensors_header_end(files.read_range(name, 0, 8), file_size, what);
  return parse_safetensors(files.read_range(name, 0, end), file_size, what);
}

// The weight files and, for shards, which file the index puts each tensor in.
std::vector<std::string> weight_file_names(const ModelFiles& files,
                                           std::map<std::string, std::string>& index) {
  if (files.has("model.safetensors")) return {"model.safetensors"};
  const std::string index_name = "model.safetensors.index.json";
  if (!files.has(index_name)) {
    throw InputError(fmt::format("{}: no model.safetensors or {}", files.where(), index_name));
  }
  const std::string what = name_in(files, index_name);
  json j = read_json(files, index_name);
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
    throw InputError(what + ": no weight_map object");
  }
  std::vector<std::string> names;
  for (const auto& [tensor, file] : j["weight_map"].items()) {
    if (!file.is_string())
      throw InputError(fmt::format("{}: {} maps to no file name", what, tensor));
    const std::string& name = file.get_ref<const std::string&>();
    if (!is_safe_name(name) || name.find('/') != std::string::npos) {
      throw InputError(
          fmt::format("{}: {} is in '{}', not a file of the directory", what, tensor, name));
    }
    if (!files.has(name)) {
      throw InputError(fmt::format("{}: {} is in {}, which is missing", what, tensor, name));
    }
    index[tensor] = name;
    names.push_back(name);
  }
  // In file name order: model-00001-of-00002.safetensors first.
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

std::vector<std::int32_t> token_ids(const json& v, const std::string& what, const char* key,
                                    std::int64_t vocab_size) {
  std::vector<std::int32_t> ids;
  if (v.is_null()) return ids;
  for (const json& id : v.is_array() ? v : json::array({v})) {
    if (!id.is_number_integer() || id.get<std::int64_t>() < 0 ||
        id.get<std::int64_t>() >= vocab_size) {
      throw InputError(fmt::format("{}: {} {} is not a token id below vocab_size {}", what, key,
                                   id.dump(), vocab_size));
    }
    ids.push_back(static_cast<std::int32_t>(id.get<std::int64_t>()));
  }
  return ids;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

// Tensors a checkpoint may carry that the model does not use: old conversions saved rotary
// frequencies; some tied checkpoints keep lm_head.weight, a copy of the embedding.
bool is_ignorable(const std::string& name, const LlamaConfig& c) {
  return name.ends_with(".self_attn.rotary_emb.inv_freq") ||
         (c.tie_word_embeddings && name == "lm_head.weight");
}

}  // namespace

std::unique_ptr<ModelFiles> directory_files(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    throw InputError(fmt::format("{}: not a directory", dir.string()));
  }
  return std::make_unique<DirectoryFiles>(dir);
}

std::unique_ptr<ModelFiles> packed_files(std::shared_ptr<const std::string> pack,
                                         std::vector<FileSlice> files, std::string where) {
  return std::make_unique<PackedFiles>(std::move(pack), std::move(files), std::move(where));
}

ModelDirectory open_model_directory(const ModelFiles& files) {
  ModelDirectory d;
  if (!files.has("config.json")) throw InputError(files.where() + ": no config.json");
  d.config = parse_llama_config(files.read("config.json"), name_in(files, "config.json"));

  std::map<std::string, std::string> index;
  for (const std::string& name : weight_file_names(files, index))
    d.weights.push_back({name, read_header(files, name)});

  // Every tensor in one file, and in the file the index says.
  for (std::size_t i = 0; i < d.weights.size(); ++i) {
    const WeightFile& w = d.weights[i];
    const std::string what = name_in(files, w.name);
    for (const SafetensorsTensor& t : w.header.tensors) {
      if (!index.empty()) {
        auto it = index.find(t.name);
        if (it == index.end()) {
          throw InputError(fmt::format("{}: tensor {} is not in the index", what, t.name));
        }
        if (it->second != w.name) {
          throw InputError(
              fmt::format("{}: tensor {} is here, the index says {}", what, t.name, it->second));
        }
      }
      if (is_ignorable(t.name, d.config)) continue;
      auto [it, inserted] = d.tensors.emplace(t.name, std::pair{i, &t});
      if (!inserted) {
        throw InputError(fmt::format("{}: tensor {} is in {} too", what, t.name,
                                     d.weights[it->second.first].name));
      }
    }
  }
  for (const auto& [tensor, file] : index) {
    if (!d.tensors.contains(tensor) && !is_ignorable(tensor, d.config)) {
      throw InputError(
          fmt::format("{}: tensor {} is missing, model.safetensors.index.json says it "
                      "is there",
                      name_in(files, file), tensor));
    }
  }

  std::set<std::string> expected;
  for (const ExpectedTensor& e : expected_tensors(d.config)) {
    auto it = d.tensors.find(e.name);
    if (it == d.tensors.end()) {
      throw InputError(fmt::format("{}: tensor {} is missing", files.where(), e.name));
    }
    const auto& [file, t] = it->second;
    if (t->shape != e.shape) {
      throw InputError(fmt::format("{}: tensor {} has shape {}, config.json says {}",
                                   name_in(files, d.weights[file].name), e.name,
                                   shape_text(t->shape), shape_text(e.shape)));
    }
    d.weight_bytes += t->end - t->begin;
    std::int64_t elements = 1;
    for (std::int64_t n : e.shape)
      elements *= n;
    d.parameters += elements;
    expected.insert(e.name);
  }
  for (const auto& [name, where] : d.tensors) {
    if (!expected.contains(name)) {
      throw InputError(fmt::format("{}: unknown tensor {} (not in a {} model of {} layers)",
                                   name_in(files, d.weights[where.first].name), name,
                                   to_string(d.config.arch), d.config.num_hidden_layers));
    }
  }

  d.eos_token_ids = d.config.eos_token_ids;
  d.bos_token_id = d.config.bos_token_id;
  if (files.has("generation_config.json")) {
    const std::string what = name_in(files, "generation_config.json");
    json g = read_json(files, "generation_config.json");
    if (!g.is_object()) throw InputError(what + ": not a JSON object");
    if (g.contains("eos_token_id") && !g["eos_token_id"].is_null()) {
      d.eos_token_ids = token_ids(g["eos_token_id"], what, "eos_token_id", d.config.vocab_size);
    }
    if (g.contains("bos_token_id") && !g["bos_token_id"].is_null()) {
      if (g["bos_token_id"].is_array()) throw InputError(what + ": bos_token_id is a list");
      d.bos_token_id = token_ids(g["bos_token_id"], what, "bos_token_id", d.config.vocab_size)[0];
    }
  }
  d.has_tokenizer = files.has("tokenizer.json");
  d.has_tokenizer_config = files.has("tokenizer_config.json");
  return d;
}

}  // namespace hearth::real
