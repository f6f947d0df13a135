// tokenizer_bench: how fast hearth's tokenizer reads a tokenizer.json file and encodes and decodes
// text. The text is about MB megabytes drawn (seeded) from paragraphs of English claims, other
// scripts, code and numbers, encoded as one string and as prompts of about 1 KB; the first pass
// over a fresh tokenizer has a cold BPE cache, the next ones a warm one.
//
//   tokenizer_bench TOKENIZER.json [MB]      (default 1)

#include <fmt/core.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "policy/errors.hpp"
#include "real_backend/text/tokenizer.hpp"

namespace {

constexpr const char* kParagraphs[] = {
    "The Eiffel Tower was completed in 1889 and stood 312 meters tall, making it the tallest "
    "structure in the world until 1930. Claim: it's repainted every 7 years. Verdict: TRUE. ",
    "Researchers didn't find evidence that the vaccine reduced transmission by 95%; the study "
    "(n=43,548) measured symptomatic infection. They'll publish follow-up data in 2025. ",
    "事实核查：网传“长城在太空中肉眼可见”的说法并不准确。宇航员表示，在近地轨道上很难辨认。",
    "Проверка фактов: утверждение о том, что Москва основана в 1147 году, соответствует летописи. ",
    "東京タワーの高さは333メートルです。スカイツリーは634メートルで、2012年に開業しました。",
    "def check(claim: str) -> bool:\n    score = model(claim)\n    return score > 0.5\n\n",
    "for (std::size_t i = 0; i < n; ++i) {\n\tsum += values[i] * weights[i];\n}\n",
    "Ελέγχουμε τον ισχυρισμό ότι η Αθήνα έχει 3.154.000 κατοίκους. 🇬🇷 ✅ Σωστό. ",
    "La tour Eiffel, achevée en 1889, mesure 330 m avec ses antennes. C'est vrai ! ",
    "    {\"claim\": \"The moon is 384,400 km away\", \"label\": \"SUPPORTED\", \"id\": 1042}\n",
    "안녕하세요! 서울의 인구는 약 940만 명입니다. 🙂👍🏽 확인 완료.\n\n",
    "Numbers: 3.14159 2.71828 1.41421 6.02214076e23 299792458 1,000,000 0.000001\n",
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: tokenizer_bench TOKENIZER.json [MB]\n");
    return 2;
  }
  double megabytes = argc > 2 ? std::stod(argv[2]) : 1.0;
  std::mt19937 engine(7);
  std::string text;
  while (text.size() < megabytes * 1e6)
    text += kParagraphs[engine() % std::size(kParagraphs)];
  std::vector<std::string> prompts;
  for (std::size_t begin = 0; begin < text.size();) {
    std::size_t end = std::min(text.size(), begin + 1000);
    while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
      ++end;
    prompts.push_back(text.substr(begin, end - begin));
    begin = end;
  }
  try {
    auto start = std::chrono::steady_clock::now();
    auto tokenizer = hearth::text::Tokenizer::from_file(argv[1]);
    fmt::print("{}\nload: {:.3f} s\n", tokenizer.summary(), seconds_since(start));
    double mb = text.size() / 1e6;
    for (int pass = 1; pass <= 3; ++pass) {
      start = std::chrono::steady_clock::now();
      std::size_t tokens = 0;
      for (const std::string& prompt : prompts)
        tokens += tokenizer.encode(prompt).size();
      double prompts_s = seconds_since(start);
      start = std::chrono::steady_clock::now();
      auto ids = tokenizer.encode(text, false);
      double whole_s = seconds_since(start);
      start = std::chrono::steady_clock::now();
      std::string decoded = tokenizer.decode(ids);
      double decode_s = seconds_since(start);
      fmt::print(
          "pass {}: {:.2f} MB, {} prompts, {} tokens: encode prompts {:.1f} MB/s, whole text "
          "{:.1f} MB/s; decode {:.1f} MB/s{}\n",
          pass, mb, prompts.size(), tokens, mb / prompts_s, mb / whole_s, mb / decode_s,
          decoded == text ? "" : " (decoded text differs)");
    }
  } catch (const hearth::InputError& e) {
    fmt::print(stderr, "tokenizer_bench: {}\n", e.what());
    return 1;
  }
  return 0;
}
