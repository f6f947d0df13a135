#include "real_backend/model/safetensors.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <fstream>
#include <future>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <stdexcept>

#include "os/atomic_file.hpp"
#include "policy/errors.hpp"

namespace hearth::real {

namespace {

using nlohmann::json;

// A safetensors header is an object of objects with arrays of numbers: anything nested deeper is
// hostile, and refusing it before parsing keeps a 100 MiB "[[[[..." from costing a deep tree.
constexpr int kMaxJsonDepth = 4;

void check_json_depth(std::string_view text, const std::string& what) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth) throw InputError(what + ": the header nests too deeply");
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
}

std::optional<DType> dtype_of_name(std::string_view name) {
  if (name == "F32") return DType::f32;
  if (name == "BF16") return DType::bf16;
  if (name == "F16") return DType::f16;
  return std::nullopt;
}

std::string_view name_of_dtype(DType d) {
  switch (d) {
    case DType::f32:
      return "F32";
    case DType::bf16:
      return "BF16";
    case DType::f16:
      return "F16";
  }
  return "?";
}

std::uint64_t read_u64_le(std::string_view bytes) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  return v;
}

SafetensorsTensor parse_tensor(const std::string& name, const json& entry, std::uint64_t data_bytes,
                               const std::string& what) {
  auto fail = [&](const std::string& fault) {
    return InputError(fmt::format("{}: tensor {}: {}", what, name, fault));
  };
  if (!entry.is_object()) throw fail("not an object");
  SafetensorsTensor t;
  t.name = name;

  auto dtype = entry.find("dtype");
  if (dtype == entry.end() || !dtype->is_string()) throw fail("no dtype");
  std::optional<DType> d = dtype_of_name(dtype->get_ref<const std::string&>());
  if (!d) {
    throw fail(fmt::format("dtype {} is not supported (F32, BF16 or F16)",
                           dtype->get_ref<const std::string&>()));
  }
  t.dtype = *d;

  auto shape = entry.find("shape");
  if (shape == entry.end() || !shape->is_array()) throw fail("no shape");
  std::uint64_t elements = 1;
  for (const json& dim : *shape) {
    if (!dim.is_number_unsigned() ||
        dim.get<std::uint64_t>() > std::uint64_t{std::numeric_limits<std::int64_t>::max()}) {
      throw fail(fmt::format("shape {} is not a list of non-negative integers", shape->dump()));
    }
    std::uint64_t n = dim.get<std::uint64_t>();
    if (__builtin_mul_overflow(elements, n, &elements))
      throw fail(fmt::format("shape {} overflows", shape->dump()));
    t.shape.push_back(static_cast<std::int64_t>(n));
  }
  std::uint64_t bytes = 0;
  if (__builtin_mul_overflow(elements, element_bytes(t.dtype), &bytes))
    throw fail(fmt::format("shape {} overflows", shape->dump()));

  auto offsets = entry.find("data_offsets");
  if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
    throw fail("data_offsets is not a pair of non-negative integers");
  }
  t.begin = (*offsets)[0].get<std::uint64_t>();
  t.end = (*offsets)[1].get<std::uint64_t>();
  if (t.begin > t.end || t.end > data_bytes) {
    throw fail(fmt::format("data_offsets [{}, {}] are outside the data region of {} bytes", t.begin,
                           t.end, data_bytes));
  }
  if (t.end - t.begin != bytes) {
    throw fail(fmt::format("shape [{}] of {} takes {} bytes, data_offsets hold {}",
                           fmt::join(t.shape, ", "), name_of_dtype(t.dtype), bytes,
                           t.end - t.begin));
  }
  return t;
}

}  // namespace

const SafetensorsTensor* SafetensorsHeader::find(std::string_view name) const {
  for (const SafetensorsTensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

std::uint64_t safetensors_header_end(std::string_view first_8_bytes, std::uint64_t file_size,
                                     const std::string& what) {
  if (first_8_bytes.size() < 8 || file_size < 8) {
    throw InputError(what + ": too short for a safetensors file");
  }
  std::uint64_t n = read_u64_le(first_8_bytes);
  if (n > kMaxSafetensorsHeaderBytes) {
    throw InputError(fmt::format("{}: header of {} bytes is longer than the most allowed, {}", what,
                                 n, kMaxSafetensorsHeaderBytes));
  }
  if (n + 8 > file_size) {
    throw InputError(fmt::format("{}: header of {} bytes is longer than the file ({} bytes)", what,
                                 n, file_size));
  }
  return 8 + n;
}

SafetensorsHeader parse_safetensors(std::string_view bytes, std::uint64_t file_size,
                                    const std::string& what) {
  const std::uint64_t header_end = safetensors_header_end(bytes.substr(0, 8), file_size, what);
  if (bytes.size() < header_end) throw InputError(what + ": the header is cut short");
  std::string_view text = bytes.substr(8, header_end - 8);
  check_json_depth(text, what);

  // nlohmann keeps the last of duplicate keys silently: the callback sees every top-level key.
  std::set<std::string> keys;
  std::string duplicate;
  json::parser_callback_t note_keys = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key && duplicate.empty()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!keys.insert(key).second) duplicate = key;
    }
    return true;
  };
  json header;
  try {
    header = json::parse(text.begin(), text.end(), note_keys);
  } catch (const json::exception& e) {
    throw InputError(fmt::format("{}: the header is not JSON: {}", what, e.what()));
  }
  if (!duplicate.empty())
    throw InputError(fmt::format("{}: tensor {} appears twice", what, duplicate));
  if (!header.is_object()) throw InputError(what + ": the header is not a JSON object");

  SafetensorsHeader out;
  out.data_offset = header_end;
  out.data_bytes = file_size - header_end;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) throw InputError(what + ": __metadata__ is not an object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) {
          throw InputError(fmt::format("{}: __metadata__ {} is not a string", what, key));
        }
        out.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    out.tensors.push_back(parse_tensor(name, entry, out.data_bytes, what));
  }

  // As Hugging Face's reader requires: the tensors tile the data region, no gap, no overlap.
  std::sort(out.tensors.begin(), out.tensors.end(),
            [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
              return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
            });
  std::uint64_t covered = 0;
  const SafetensorsTensor* previous = nullptr;
  for (const SafetensorsTensor& t : out.tensors) {
    if (t.begin < covered) {
      throw InputError(fmt::format("{}: tensors {} and {} overlap", what, previous->name, t.name));
    }
    if (t.begin > covered) {
      throw InputError(fmt::format("{}: bytes [{}, {}) before tensor {} belong to no tensor", what,
                                   covered, t.begin, t.name));
    }
    covered = t.end;
    previous = &t;
  }
  if (covered != out.data_bytes) {
    throw InputError(fmt::format("{}: the data region holds {} bytes, its tensors {}", what,
                                 out.data_bytes, covered));
  }
  return out;
}

SafetensorsHeader read_safetensors_header(const std::filesystem::path& path) {
  const std::string what = path.string();
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  const std::uint64_t file_size = std::filesystem::file_size(path, ec);
  if (!in || ec) throw InputError(what + ": cannot read");
  std::string bytes(8, '\0');
  in.read(bytes.data(), 8);
  if (in.gcount() != 8) throw InputError(what + ": too short for a safetensors file");
  const std::uint64_t end = safetensors_header_end(bytes, file_size, what);
  bytes.resize(end);
  in.read(bytes.data() + 8, static_cast<std::streamsize>(end - 8));
  if (static_cast<std::uint64_t>(in.gcount()) != end - 8) throw InputError(what + ": cannot read");
  return parse_safetensors(bytes, file_size, what);
}

void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  std::vector<std::uint64_t> sizes;
  for (const TensorToWrite& t : tensors) {
    std::uint64_t bytes = element_bytes(t.dtype);
    for (std::int64_t d : t.shape)
      bytes *= static_cast<std::uint64_t>(d);
    header[t.name] = {{"dtype", name_of_dtype(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    sizes.push_back(bytes);
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string length(8, '\0');
  for (int i = 0; i < 8; ++i)
    length[static_cast<std::size_t>(i)] = static_cast<char>((text.size() >> (8 * i)) & 0xff);

  os::AtomicFile file(path, os::temp_beside(path));
  std::ofstream& out = file.stream();
  out.write(length.data(), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  // Tensor i + 1 is made while tensor i is written: two tensors in memory at most.
  std::vector<char> writing, making;
  auto make = [&](std::size_t i) {
    return std::async(std::launch::async, [&, i] {
      making.resize(sizes[i]);
      tensors[i].fill(making.data());
    });
  };
  std::future<void> made = tensors.empty() ? std::future<void>() : make(0);
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    made.get();
    std::swap(writing, making);
    if (i + 1 < tensors.size()) made = make(i + 1);
    if (out) out.write(writing.data(), static_cast<std::streamsize>(writing.size()));
  }
  if (!file.commit()) throw std::runtime_error(file.temp().string() + ": cannot write");
}

}  // namespace hearth::real
