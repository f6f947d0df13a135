#pragma once
// A dataset: one JSON object per line, each with a unique "id" (string or integer) and the fields
// a context's prompt template names ("prompt" by default), or "input_ids" (token ids) for a
// context without a template.
//
//   {"id": "claim-17", "prompt": "The Eiffel Tower is in Rome."}
//   {"id": 18, "input_ids": [72, 105]}

#include <cstdint>
#include <filesystem>
#include <istream>
#include <map>
#include <string>
#include <vector>

namespace hearth::real {

struct DatasetRow {
  std::string id_json;                        // the id exactly as JSON: "\"claim-17\"" or "18"
  std::map<std::string, std::string> fields;  // string fields other than id
  std::vector<std::int32_t> input_ids;
  bool has_input_ids = false;
  std::size_t line = 0;
};

struct Dataset {
  std::string source;  // path, for messages
  std::vector<DatasetRow> rows;
};

// Throws InputError("data.jsonl:17: missing \"id\"") at the first bad line; ids must be unique.
Dataset read_dataset(const std::filesystem::path& path);
// The same from a stream; `source` names it in messages.
Dataset read_dataset(std::istream& in, std::string source);

// A prompt template: text with {field} placeholders.
class PromptTemplate {
 public:
  PromptTemplate() = default;  // none: inputs are the rows' input_ids
  explicit PromptTemplate(std::string text);
  bool empty() const { return parts_.empty(); }
  // The prompt for `row`: the text with each {field} replaced by the row's field. Requires a
  // template. Throws InputError("data.jsonl:3: missing string field \"claim\" ...").
  std::string render(const DatasetRow& row, const std::string& source) const;
  // The byte-level token ids of the rendered prompt (one id per UTF-8 byte), or the row's
  // input_ids when there is no template. Throws InputError as render() does.
  std::vector<std::int32_t> tokens(const DatasetRow& row, const std::string& source) const;

 private:
  struct Part {
    std::string text;
    bool field = false;
  };
  std::vector<Part> parts_;
};

}  // namespace hearth::real
