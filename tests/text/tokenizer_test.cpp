// The tokenizer on small hand-written tokenizer.json files: BPE merge order, unknown characters,
// added tokens, the post-processor, decoding, and what it refuses (by name) or rejects (with
// where and what) instead of crashing.

#include <catch2/catch_test_macros.hpp>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>

#include "real_backend/text/tokenizer.hpp"
#include "tests/input_error.hpp"

namespace {

using hearth::testing::input_error;
using hearth::text::Tokenizer;
using nlohmann::json;
using Ids = std::vector<std::int32_t>;

// A character-level BPE over a, b, c: "a b" (rank 0), "ab c" (1), "b c" (2).
json toy() {
  return json::parse(R"({
    "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
    "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null,
    "model": {"type": "BPE", "dropout": null, "unk_token": null, "fuse_unk": false,
              "byte_fallback": false, "ignore_merges": false,
              "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4, "bc": 5, "<unk>": 6},
              "merges": ["a b", "ab c", "b c"]}})");
}

Tokenizer load(const json& file) {
  return Tokenizer::from_json(file.dump());
}

std::string refusal(const json& file) {
  return input_error([&] { Tokenizer::from_json(file.dump()); });
}

// A byte-level tokenizer, as llama3's, over the bytes that spell "hi" and a space.
json byte_level_toy() {
  json file = toy();
  file["model"]["vocab"] = {{"h", 0}, {"i", 1}, {"hi", 2}, {"\u0120", 3}, {"\u0120hi", 4}};
  file["model"]["merges"] = {"h i", "\u0120 hi"};
  file["pre_tokenizer"] = json::parse(R"({"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": " ?\\p{L}+|\\s+"}, "behavior": "Isolated",
       "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]})");
  file["decoder"] = {{"type", "ByteLevel"}};
  return file;
}

}  // namespace

TEST_CASE("BPE merges the lowest-ranked pair first, and the leftmost among equals") {
  Tokenizer t = load(toy());
  CHECK(t.encode("abc") == Ids{4});  // a b (0), then ab c (1); b c (2) never gets its turn
  CHECK(t.encode("bc") == Ids{5});
  CHECK(t.encode("cab") == Ids{2, 3});
  json file = toy();
  file["model"]["vocab"] = {{"a", 0}, {"aa", 1}};
  file["model"]["merges"] = {"a a"};
  CHECK(load(file).encode("aaa") == Ids{1, 0});
}

TEST_CASE("merges may be written as pairs") {
  json file = toy();
  file["model"]["merges"] = json::parse(R"([["a", "b"], ["ab", "c"], ["b", "c"]])");
  CHECK(load(file).encode("abcbc") == Ids{4, 5});
}

TEST_CASE("unknown characters become unk, fused when asked, or their bytes with byte_fallback") {
  json file = toy();
  CHECK(load(file).encode("axxb") == Ids{0, 1});  // no unk_token: dropped, as the reference does
  file["model"]["unk_token"] = "<unk>";
  CHECK(load(file).encode("axxb") == Ids{0, 6, 6, 1});
  file["model"]["fuse_unk"] = true;
  CHECK(load(file).encode("axxb") == Ids{0, 6, 1});
  file["model"]["byte_fallback"] = true;
  file["model"]["vocab"]["<0xC3>"] = 7;
  file["model"]["vocab"]["<0xA9>"] = 8;
  CHECK(load(file).encode("aéx") == Ids{0, 7, 8, 6});
}

TEST_CASE("ignore_merges takes a pre-token that is a whole token as it is") {
  json file = toy();
  file["model"]["merges"] = {"b c"};
  CHECK(load(file).encode("abc") == Ids{0, 5});
  file["model"]["ignore_merges"] = true;
  CHECK(load(file).encode("abc") == Ids{4});
}

TEST_CASE("added tokens are matched in the raw text, longest first, special or not") {
  json file = toy();
  file["added_tokens"] = json::parse(R"([
      {"id": 10, "content": "<s>", "special": true, "normalized": false},
      {"id": 11, "content": "<s>x", "special": false, "normalized": false},
      {"id": 12, "content": "[c]", "special": true, "lstrip": true, "rstrip": true,
       "normalized": false}])");
  Tokenizer t = load(file);
  CHECK(t.encode("a<s>b") == Ids{0, 10, 1});
  CHECK(t.encode("a<s>xb") == Ids{0, 11, 1});
  CHECK(t.encode("a  [c]  b") == Ids{0, 12, 1});  // lstrip and rstrip take the spaces
  CHECK(t.is_special(10));
  CHECK_FALSE(t.is_special(11));
  CHECK_FALSE(t.is_special(0));
  CHECK(t.vocab_size() == 13);
  CHECK(t.token_to_id("<s>x") == 11);
  CHECK(t.token_to_id("abc") == 4);
  CHECK_FALSE(t.token_to_id("zzz"));
  CHECK(t.id_to_token(12) == "[c]");
  CHECK(t.decode({0, 10, 1}, {.skip_special_tokens = true}) == "a b");  // no decoder: spaces
}

TEST_CASE("a single_word added token matches only as a whole word") {
  json file = toy();
  file["added_tokens"] = json::parse(R"([{"id": 10, "content": "ab", "single_word": true,
                                          "special": false, "normalized": false}])");
  file["pre_tokenizer"] = json::parse(R"({"type": "Split", "pattern": {"String": " "},
                                          "behavior": "Removed", "invert": false})");
  Tokenizer t = load(file);
  CHECK(t.encode("c ab c") == Ids{2, 10, 2});
  CHECK(t.encode("cab") == Ids{2, 3});
}

TEST_CASE("the template post-processor adds its tokens only with add_special_tokens") {
  json file = toy();
  file["added_tokens"] = json::parse(R"([{"id": 7, "content": "<s>", "special": true},
                                         {"id": 8, "content": "</s>", "special": true}])");
  file["post_processor"] = json::parse(R"({"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                 {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "</s>", "type_id": 0}}],
      "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [7], "tokens": ["<s>"]},
                                     "</s>": {"id": "</s>", "ids": [8], "tokens": ["</s>"]}}})");
  Tokenizer t = load(file);
  CHECK(t.encode("abc") == Ids{7, 4, 8});
  CHECK(t.encode("abc", false) == Ids{4});
  CHECK(t.summary() == "BPE, 9 tokens (2 added), post-processor adds <s> </s>");
}

TEST_CASE("byte-level files encode any bytes and decode back to the text") {
  Tokenizer t = load(byte_level_toy());
  CHECK(t.encode("hi hi") == Ids{2, 4});
  CHECK(t.decode({2, 4}) == "hi hi");
  CHECK(t.summary() == "byte-level BPE, 5 tokens (0 added), post-processor adds nothing");
  // Bytes that are not UTF-8 are read as U+FFFD (absent from this vocabulary: dropped).
  CHECK(t.encode(std::string("hi\xff\xfe hi", 7)) == Ids{2, 4});
  CHECK(t.decode({0}, {.clean_up_tokenization_spaces = true}) == "h");
}

TEST_CASE("copies share one tokenizer that encodes alike from several threads at once") {
  Tokenizer original = load(byte_level_toy());
  std::vector<std::string> texts;
  for (int k = 0; k < 200; ++k)
    texts.push_back(std::string(k % 7, ' ') + "hi" + std::to_string(k));
  std::vector<Ids> expected;
  for (const std::string& text : texts)
    expected.push_back(original.encode(text));
  std::vector<int> wrong(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t, copy = original] {
      for (int round = 0; round < 50; ++round) {
        for (std::size_t k = 0; k < texts.size(); ++k)
          wrong[t] += copy.encode(texts[k]) != expected[k];
      }
    });
  }
  for (std::thread& thread : threads)
    thread.join();
  CHECK(wrong == std::vector<int>(4, 0));
}

TEST_CASE("the llama2 decoders: Replace, ByteFallback, Fuse, Strip") {
  json file = toy();
  file["model"]["vocab"] = {{"\u2581a", 0}, {"b", 1},      {"<0xE2>", 2},
                            {"<0x82>", 3},  {"<0xAC>", 4}, {"\u2581", 5}};
  file["model"]["merges"] = json::array();
  file["decoder"] = json::parse(R"({"type": "Sequence", "decoders": [
      {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
      {"type": "ByteFallback"}, {"type": "Fuse"},
      {"type": "Strip", "content": " ", "start": 1, "stop": 0}]})");
  Tokenizer t = load(file);
  CHECK(t.decode({0, 1, 2, 3, 4, 5, 0}) == "ab\u20AC  a");
  CHECK(t.decode({2, 3, 1}) == "\uFFFD\uFFFDb");  // an incomplete sequence: U+FFFD per byte
}

TEST_CASE("clean_up_tokenization_spaces joins punctuation and contractions as HF does") {
  json file = toy();
  file["model"]["vocab"] = {{"x", 0}, {".", 1}, {"n't", 2}, {"'s", 3}};
  file["model"]["merges"] = json::array();
  Tokenizer t = load(file);
  CHECK(t.decode({0, 1, 0, 2, 0, 3}) == "x . x n't x 's");
  CHECK(t.decode({0, 1, 0, 2, 0, 3}, {.clean_up_tokenization_spaces = true}) == "x. xn't x's");
}

TEST_CASE("decode rejects ids that name no token") {
  Tokenizer t = load(toy());
  CHECK(input_error([&] { t.decode({0, 7}); }) == "token id 7 is not in the vocabulary (7 ids)");
  CHECK(input_error([&] { t.decode({-1}); }) == "token id -1 is not in the vocabulary (7 ids)");
}

TEST_CASE("malformed files are rejected with where and what") {
  CHECK(input_error([] {
          Tokenizer::from_json("{\"model\": ", "x.json");
        }).starts_with("x.json: not valid JSON: "));
  CHECK(refusal(json::array()) == "tokenizer.json: expected an object, found an array");
  json file = toy();
  file.erase("model");
  CHECK(refusal(file) == "tokenizer.json: missing key \"model\"");

  file = toy();
  file["model"]["vocab"]["d"] = -1;
  CHECK(refusal(file) == "tokenizer.json: model.vocab[\"d\"]: -1 is outside [0, 16777215]");
  file["model"]["vocab"]["d"] = 1e300;
  CHECK(refusal(file) == "tokenizer.json: model.vocab[\"d\"]: expected an integer, found 1e+300");
  file["model"]["vocab"]["d"] = 18446744073709551615u;
  CHECK(refusal(file) ==
        "tokenizer.json: model.vocab[\"d\"]: 18446744073709551615 is above 16777215");
  file["model"]["vocab"]["d"] = "7";
  CHECK(refusal(file) == "tokenizer.json: model.vocab[\"d\"]: expected an integer, found \"7\"");
  file["model"]["vocab"]["d"] = 2;
  CHECK(refusal(file) == "tokenizer.json: model.vocab: id 2 given to both \"c\" and \"d\"");
  // Ids are dense: found by fuzz_tokenizer, one id of 16,777,215 made a table of that many
  // entries (over a second, half a gigabyte). 65,536 past what the file names is the most.
  file["model"]["vocab"]["d"] = 7 + 65535;
  CHECK_NOTHROW(load(file));
  file["model"]["vocab"]["d"] = 8 + 65536;
  CHECK(refusal(file) ==
        "tokenizer.json: model.vocab: id 65544 is too far past its 8 tokens (ids are dense: at "
        "most 65543)");
  file = toy();
  file["added_tokens"] = json::array({{{"id", 7 + 65536}, {"content", "<x>"}}});
  CHECK(refusal(file) ==
        "tokenizer.json: added_tokens[0].id: 65543 is too far past the 7 tokens named before it "
        "(ids are dense: at most 65542)");
  file["added_tokens"][0]["id"] = 7 + 65535;
  CHECK(load(file).vocab_size() == 7 + 65536);

  file = toy();
  file["model"]["merges"][1] = "ab z";
  CHECK(refusal(file) == "tokenizer.json: model.merges[1]: \"z\" is not in the vocabulary");
  file["model"]["merges"][1] = "c a";
  CHECK(refusal(file) == "tokenizer.json: model.merges[1]: \"ca\" is not in the vocabulary");
  file["model"]["merges"][1] = "abc";
  CHECK(refusal(file) ==
        "tokenizer.json: model.merges[1]: expected two tokens separated by one space");
  file["model"]["merges"][1] = json::array({"a"});
  CHECK(refusal(file) == "tokenizer.json: model.merges[1]: expected a pair of tokens");
  file["model"]["merges"] = "a b";
  CHECK(refusal(file) == "tokenizer.json: model.merges: expected an array, found \"a b\"");

  file = toy();
  file["model"]["unk_token"] = "<nope>";
  CHECK(refusal(file) == "tokenizer.json: model.unk_token: \"<nope>\" is not in the vocabulary");
  file = toy();
  file["added_tokens"] = json::parse(R"([{"id": 99999999999, "content": "x"}])");
  CHECK(refusal(file) == "tokenizer.json: added_tokens[0].id: 99999999999 is above 16777215");
  file["added_tokens"] = json::parse(R"([{"id": 9, "content": ""}])");
  CHECK(refusal(file) == "tokenizer.json: added_tokens[0].content: an added token cannot be empty");
  file = toy();
  file["post_processor"] = json::parse(R"({"type": "TemplateProcessing", "special_tokens": {},
      "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}]})");
  CHECK(refusal(file) ==
        "tokenizer.json: post_processor.single[0].SpecialToken.id: \"<s>\" is not in "
        "special_tokens");
}

TEST_CASE("what the tokenizer does not support is refused by name") {
  json file = toy();
  file["pre_tokenizer"] = {{"type", "Whitespace"}};
  CHECK(refusal(file) == "tokenizer.json: pre_tokenizer type \"Whitespace\" is not supported");
  file = toy();
  file["normalizer"] = json::parse(R"({"type": "Sequence", "normalizers": [{"type": "NFKC"}]})");
  CHECK(refusal(file) ==
        "tokenizer.json: normalizer.normalizers[0] type \"NFKC\" is not supported");
  file = toy();
  file["model"]["type"] = "Unigram";
  CHECK(refusal(file) == "tokenizer.json: model.type \"Unigram\" is not supported");
  file = toy();
  file["model"]["dropout"] = 0.1;
  CHECK(refusal(file) == "tokenizer.json: model.dropout (not null) is not supported");
  file = toy();
  file["decoder"] = {{"type", "WordPiece"}};
  CHECK(refusal(file) == "tokenizer.json: decoder type \"WordPiece\" is not supported");
  file = toy();
  file["post_processor"] = {{"type", "RobertaProcessing"}};
  CHECK(refusal(file) ==
        "tokenizer.json: post_processor type \"RobertaProcessing\" is not supported");
  file = toy();
  file["truncation"] = {{"max_length", 8}};
  CHECK(refusal(file) == "tokenizer.json: truncation (not null) is not supported");
  file = toy();
  file["pre_tokenizer"] = json::parse(R"({"type": "Split", "pattern": {"Regex": "\\w+"},
                                          "behavior": "Isolated", "invert": false})");
  CHECK(refusal(file) ==
        "tokenizer.json: pre_tokenizer.pattern.Regex: regex not supported: "
        "unsupported escape \"\\w\" at offset 0");
  file["pre_tokenizer"]["behavior"] = "MergedWithPrevious";
  CHECK(refusal(file) ==
        "tokenizer.json: pre_tokenizer.behavior \"MergedWithPrevious\" is not supported");
  file = toy();
  json nested = {{"type", "NFC"}};
  for (int k = 0; k < 100; ++k)
    nested = {{"type", "Sequence"}, {"normalizers", {nested}}};
  file["normalizer"] = nested;
  CHECK(refusal(file).ends_with("sequences nested too deeply"));
}

TEST_CASE("a file that cannot be read says so") {
  CHECK(input_error([] { Tokenizer::from_file("/nonexistent/tokenizer.json"); }) ==
        "/nonexistent/tokenizer.json: cannot be read");
}

TEST_CASE("mangled files load or are rejected with an InputError, never anything worse") {
  json file = byte_level_toy();
  file["added_tokens"] = json::parse(R"([{"id": 5, "content": "<s>", "special": true}])");
  file["post_processor"] = json::parse(R"({"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                 {"Sequence": {"id": "A", "type_id": 0}}],
      "special_tokens": {"<s>": {"id": "<s>", "ids": [5], "tokens": ["<s>"]}}})");
  const std::string original = file.dump();
  constexpr char kJsonBytes[] = "[]{}\":,0123456789-e.tfn ";
  std::mt19937 engine(12345);
  std::size_t loaded = 0, rejected = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string text = original;
    for (int edits = 1 + engine() % 4; edits > 0; --edits) {
      std::size_t at = engine() % text.size();
      switch (engine() % 3) {
        case 0:
          text[at] = static_cast<char>(engine() % 128);
          break;
        case 1:
          text.erase(at, 1 + engine() % 8);
          break;
        default:
          text.insert(at, 1, kJsonBytes[engine() % (sizeof kJsonBytes - 1)]);
          break;
      }
    }
    try {
      Tokenizer t = Tokenizer::from_json(text);
      t.encode("hi <s> hi\xff");
      ++loaded;
    } catch (const hearth::InputError&) {
      ++rejected;
    }
  }
  CHECK(loaded > 50);
  CHECK(rejected > 1000);
}

TEST_CASE("deeply nested JSON is rejected without exhausting the stack") {
  std::string deep = std::string(200'000, '[') + std::string(200'000, ']');
  CHECK(input_error([&] { Tokenizer::from_json(deep); }) ==
        "tokenizer.json: expected an object, found an array");
}

TEST_CASE("any bytes encode: ill-formed UTF-8 is read as U+FFFD") {
  json file = byte_level_toy();
  // U+FFFD is the bytes EF BF BD: byte-level characters U+00EF U+00BF U+00BD.
  file["model"]["vocab"]["A"] = 10;
  file["model"]["vocab"]["\u00EF"] = 11;
  file["model"]["vocab"]["\u00BF"] = 12;
  file["model"]["vocab"]["\u00BD"] = 13;
  Tokenizer t = load(file);
  std::string fffd = "\xEF\xBF\xBD";
  CHECK(t.decode(t.encode(std::string("A\x80"
                                      "A\xE2\x82"
                                      "A\xF0\x9F\x98"))) == "A" + fffd + "A" + fffd + "A" + fffd);
  CHECK(t.decode(t.encode("\xED\xA0\x80")) == fffd + fffd + fffd);  // a surrogate: 3 subparts
  std::mt19937 engine(99);
  for (int round = 0; round < 2000; ++round) {
    std::string bytes(engine() % 64, '\0');
    for (char& c : bytes)
      c = static_cast<char>(engine());
    CHECK_NOTHROW(t.decode(t.encode(bytes)));
  }
}
