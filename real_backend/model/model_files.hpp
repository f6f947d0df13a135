#pragma once
// A Hugging Face model directory, wherever its files are: a directory on disk, or packed in one
// byte string (a context's bytes in host memory: its files one after another, where FileSlice
// says). Model loaders read through this, so the same code loads from either.
//
// What a directory holds: config.json, model.safetensors or shards named by
// model.safetensors.index.json ({"weight_map": {tensor: file}}), tokenizer.json,
// tokenizer_config.json, optionally generation_config.json.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "real_backend/model/llama_config.hpp"
#include "real_backend/model/safetensors.hpp"

namespace hearth::real {

// One file of a packed directory: bytes [offset, offset + size) of the pack.
struct FileSlice {
  std::string name;  // relative path, '/'-separated
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
};

class ModelFiles {
 public:
  virtual ~ModelFiles() = default;
  // Where the files are, for messages: "models/smol/" or "context fever-1".
  virtual std::string where() const = 0;
  virtual bool has(const std::string& name) const = 0;
  virtual std::uint64_t size(const std::string& name) const = 0;
  // The whole file (small files: JSON). Throws InputError if missing or unreadable.
  virtual std::string read(const std::string& name) const = 0;
  // Bytes [offset, offset + length) of a file. Throws InputError.
  virtual std::string read_range(const std::string& name, std::uint64_t offset,
                                 std::uint64_t length) const = 0;
  // The packed bytes when the files are in memory (null for a directory): loaders take views
  // into them instead of copies.
  virtual std::shared_ptr<const std::string> pack() const { return nullptr; }
  // Where `name` starts in pack() (or, for a directory, the file's own path and offset 0).
  virtual FileSlice slice(const std::string& name) const = 0;
  virtual std::filesystem::path path(const std::string& name) const = 0;  // empty when packed
};

std::unique_ptr<ModelFiles> directory_files(const std::filesystem::path& dir);
std::unique_ptr<ModelFiles> packed_files(std::shared_ptr<const std::string> pack,
                                         std::vector<FileSlice> files, std::string where);

// A model directory, checked: its config, where each tensor lives (file and header), and the
// token ids generation ends at (generation_config.json's eos_token_id, else config.json's).
struct WeightFile {
  std::string name;  // model.safetensors or a shard
  SafetensorsHeader header;
};
// Moved, `tensors` still points into `weights`; copied, it would not: hence no copies.
struct ModelDirectory {
  ModelDirectory() = default;
  ModelDirectory(ModelDirectory&&) = default;
  ModelDirectory& operator=(ModelDirectory&&) = default;
  ModelDirectory(const ModelDirectory&) = delete;
  ModelDirectory& operator=(const ModelDirectory&) = delete;

  LlamaConfig config;
  std::vector<WeightFile> weights;
  // Tensor name -> (index into weights, the tensor in that file's header).
  std::map<std::string, std::pair<std::size_t, const SafetensorsTensor*>> tensors;
  std::vector<std::int32_t> eos_token_ids;
  std::optional<std::int32_t> bos_token_id;
  bool has_tokenizer = false;         // tokenizer.json present
  bool has_tokenizer_config = false;  // tokenizer_config.json present
  std::uint64_t weight_bytes = 0;
  std::int64_t parameters = 0;
};
// Reads and checks everything but the weights' values: the config, each safetensors header, that
// every expected tensor is there once with its shape and a dtype the model can use, and nothing
// unknown beside them (but for what a model ignores: rotary_emb.inv_freq, and lm_head.weight
// when tied, left out of `tensors`). A shard index must name files of the directory, and each
// shard hold exactly the tensors the index puts there. Throws InputError("DIR/model.safetensors:
// tensor model.norm.weight has shape [64], config.json says [128]").
ModelDirectory open_model_directory(const ModelFiles& files);

}  // namespace hearth::real
