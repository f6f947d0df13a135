#include "tests/text/test_strings.hpp"

#include <array>
#include <random>
#include <string_view>

#include "real_backend/text/unicode.hpp"

namespace hearth::testing {
namespace {

// Draws use the engine's raw output only (std::*_distribution differs between libraries).
class Draw {
 public:
  explicit Draw(std::uint32_t seed) : engine_(seed) {}
  std::size_t below(std::size_t n) { return engine_() % n; }
  bool chance(int percent) { return below(100) < static_cast<std::size_t>(percent); }
  template <class List>
  std::string_view pick(const List& list) {
    return list[below(std::size(list))];
  }

 private:
  std::mt19937 engine_;
};

constexpr std::string_view kSubjects[] = {"The Eiffel Tower",
                                          "Mount Everest",
                                          "The Great Wall of China",
                                          "Marie Curie",
                                          "The speed of light",
                                          "Water",
                                          "The Amazon River",
                                          "Albert Einstein",
                                          "The moon",
                                          "Python 3.12",
                                          "The human genome",
                                          "Tokyo",
                                          "The Treaty of Versailles",
                                          "COVID-19 vaccines",
                                          "The GDP of France",
                                          "Ada Lovelace",
                                          "Jupiter",
                                          "The Berlin Wall",
                                          "Insulin",
                                          "Bitcoin"};
constexpr std::string_view kVerbs[] = {"was completed in",
                                       "is taller than",
                                       "was discovered in",
                                       "won the Nobel Prize in",
                                       "is approximately",
                                       "boils at",
                                       "flows through",
                                       "was born in",
                                       "orbits at",
                                       "released in",
                                       "contains about",
                                       "has a population of",
                                       "was signed in",
                                       "reduced deaths by",
                                       "grew by",
                                       "wrote the first program in",
                                       "has",
                                       "fell in",
                                       "was isolated in",
                                       "peaked at"};
constexpr std::string_view kUnits[] = {"meters",     "km/s",  "°C",  "%",  "people", "years", "kg",
                                       "base pairs", "moons", "USD", "m²", "ft",     "µs",    "€"};
constexpr std::string_view kVerdicts[] = {
    "True.",   "FALSE!",      "Mostly true?", "Unverified…",       "Misleading (see sources).",
    "Claim: ", "Fact check:", "Rating: 3/5",  "[citation needed]", "— Wikipedia"};
constexpr std::string_view kContractions[] = {
    "DON'T", "don't",   "it's",    "IT'S",   "I'm",           "I'M",    "we've",
    "WE'VE", "they'll", "THEY'LL", "she'd",  "SHE'D",         "you're", "YOU'RE",
    "won't", "Can't",   "it’s",    "O'Neil", "rock 'n' roll", "'tis",   "y'all",
    "ma'am", "'S",      "'t",      "'Re",    "'vE",           "'lL",    "'D"};
constexpr std::string_view kSpecials[] = {"<|begin_of_text|>",
                                          "<|end_of_text|>",
                                          "<|eot_id|>",
                                          "<|start_header_id|>",
                                          "<|end_header_id|>",
                                          "<|reserved_special_token_5|>",
                                          "<s>",
                                          "</s>",
                                          "<unk>",
                                          "<|im_start|>",
                                          "<|im_end|>",
                                          "<|endoftext|>",
                                          "<think>",
                                          "</think>",
                                          "<tool_call>",
                                          "<|fim_prefix|>",
                                          "<|im_sta",
                                          "<|begin_of_text|",
                                          "<s",
                                          "<<s>>",
                                          "<|im_start|><|im_end|>",
                                          "<|vision_pad|>"};
constexpr std::string_view kWords[] = {"hello",
                                       "World",
                                       "tokenizer",
                                       "naïve",
                                       "café",
                                       "résumé",
                                       "Straße",
                                       "façade",
                                       "jalapeño",
                                       "Ångström",
                                       "Zürich",
                                       "São Paulo",
                                       "Kraków",
                                       "İstanbul",
                                       "ΑΘΗΝΑ",
                                       "αλήθεια",
                                       "Москва",
                                       "правда",
                                       "مرحبا",
                                       "שלום",
                                       "नमस्ते",
                                       "สวัสดี",
                                       "안녕하세요",
                                       "한국어",
                                       "日本語",
                                       "東京",
                                       "ひらがな",
                                       "カタカナ",
                                       "中文",
                                       "北京大学",
                                       "事实核查",
                                       "Tiếng Việt",
                                       "người",
                                       "ἀλήθεια",
                                       "ǅemal",
                                       "ﬁnance",
                                       "Ⅻ",
                                       "½",
                                       "x²",
                                       "ℌ",
                                       "ｆｕｌｌｗｉｄｔｈ",
                                       "𝐁𝐨𝐥𝐝",
                                       "𝔉𝔯𝔞𝔨𝔱𝔲𝔯",
                                       "ᏣᎳᎩ",
                                       "ᠮᠣᠩᠭᠣᠯ",
                                       "ქართული",
                                       "Հայերեն",
                                       "አማርኛ",
                                       "தமிழ்",
                                       "ꦗꦮ"};
// Letters followed by combining marks, often in non-canonical order: NFC must reorder and
// compose them exactly as the reference does.
constexpr std::string_view kDecomposed[] = {"e\u0301",
                                            "E\u0300",
                                            "a\u0308",
                                            "o\u0302\u0301",
                                            "e\u0323\u0302",
                                            "e\u0302\u0323",
                                            "a\u0301\u0323",
                                            "u\u031B\u0309",
                                            "n\u0303",
                                            "c\u0327",
                                            "A\u030A",
                                            "\u212B",
                                            "\u212A",
                                            "\u2126",
                                            "i\u0307",
                                            "\u1100\u1161",
                                            "\u1100\u1161\u11A8",
                                            "\uAC00\u11A8",
                                            "\u1112\u1161\u11AB",
                                            "\u0915\u093C",
                                            "\u0627\u0653",
                                            "\u05D1\u05BC",
                                            "q\u0307\u0323",
                                            "\u0041\u0338",
                                            "\u003D\u0338",
                                            "\u03B9\u0308\u0301",
                                            "\u0399\u0301",
                                            "\u0CC6\u0CC2\u0CD5",
                                            "\u0DD9\u0DCF\u0DCA",
                                            "\u1025\u102E",
                                            "\u0B47\u0B3E",
                                            "\u09C7\u09BE",
                                            "\uF900",
                                            "\uFA10",
                                            "\u2ADC",
                                            "\u0344",
                                            "\u0F73",
                                            "\u0F77",
                                            "x\u0301\u0301\u0301",
                                            "\u0301",
                                            "\u0300a",
                                            "\u1E0B\u0323",
                                            "\u1E9B\u0323",
                                            "\u3099",
                                            "\u304B\u3099",
                                            "\u30CF\u309A",
                                            "\U00011099\U000110BA",
                                            "\U000115B8\U000115AF"};
constexpr std::string_view kEmoji[] = {"😀",
                                       "🎉",
                                       "👍🏽",
                                       "👨‍👩‍👧‍👦",
                                       "🏳️‍🌈",
                                       "🇫🇷",
                                       "🇯🇵🇺🇸",
                                       "1️⃣",
                                       "❤️",
                                       "🧑🏿‍💻",
                                       "👩‍❤️‍💋‍👨",
                                       "🤷‍♀️",
                                       "🫠",
                                       "☕",
                                       "✅",
                                       "⚠️",
                                       "🔥🔥🔥",
                                       "🙂‍↕️",
                                       "🐈‍⬛",
                                       "©",
                                       "™"};
constexpr std::string_view kCode[] = {
    "int main() {\n    return 0;\n}\n",
    "def f(x):\n\tif x > 0:\n\t\treturn x ** 2\n\treturn -x\n",
    "for (size_t i = 0; i < n; ++i) sum += a[i];",
    "{\"id\": 42, \"name\": \"hearth\", \"tags\": [\"a\", \"b\"]}",
    "SELECT * FROM users WHERE id = 7;\r\n",
    "const re = /^\\s+|\\s+$/g; // trim",
    "    x = [1, 2, 3]  # comment\n\n\n",
    "#include <vector>\nstd::vector<int> v{1,2,3};",
    "if (a != b && c <= d || !e) { throw std::runtime_error(\"bad\"); }",
    "https://example.com/path?q=fact+check&lang=en#section-2",
    "$ ls -la ~/.config | grep -v '^d' > out.txt 2>&1",
    "<div class=\"claim\">The sky is <b>blue</b></div>",
    "a:b::c;;;d...e___f---g===h+++i",
    "λx.λy.x y ∀x∈ℝ: x² ≥ 0 ⇒ √(x²) = |x|"};
constexpr std::string_view kSpaces[] = {
    " ",      "  ",     "   ",      "    ",   "        ", "\t",    "\t\t",   "\n",     "\n\n",
    "\n\n\n", "\r\n",   "\r\n\r\n", " \n",    "\n ",      " \t\n", "\u00A0", "\u3000", "\u2028",
    "\u2009", "\u200B", "\uFEFF",   "\u0085", "\v",       "\f",    " \n \n "};
constexpr std::string_view kNumbers[] = {
    "0",     "7",       "42",   "1889",  "2024",  "3.14159", "1,000,000", "12345678901234567890",
    "0.001", "-273.15", "1e-9", "99.9%", "$4.5B", "٣٤٥",     "１２３",    "⅔",
    "2⁸",    "10^6",    "#1",   "v2.0.1"};

std::string random_code_point(Draw& draw) {
  char32_t cp = 0;
  switch (draw.below(4)) {
    case 0:
      cp = static_cast<char32_t>(0x20 + draw.below(0x60));
      break;
    case 1:
      cp = static_cast<char32_t>(0xA0 + draw.below(0x2000 - 0xA0));
      break;
    case 2:
      cp = static_cast<char32_t>(draw.below(0x10000));
      break;
    default:
      cp = static_cast<char32_t>(0x10000 + draw.below(0x10000 * 3));
      break;
  }
  if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;  // no lone surrogates: they are not text
  std::string out;
  hearth::text::unicode::append_utf8(out, cp);
  return out;
}

std::string number(Draw& draw) {
  std::string digits;
  std::size_t length = 1 + draw.below(draw.chance(20) ? 25 : 5);
  for (std::size_t k = 0; k < length; ++k)
    digits.push_back(static_cast<char>('0' + draw.below(10)));
  return digits;
}

std::string claim(Draw& draw) {
  std::string s;
  if (draw.chance(30)) s += std::string(draw.pick(kVerdicts)) + " ";
  s += std::string(draw.pick(kSubjects)) + " " + std::string(draw.pick(kVerbs)) + " ";
  s += draw.chance(50) ? number(draw) : std::string(draw.pick(kNumbers));
  if (draw.chance(60)) s += " " + std::string(draw.pick(kUnits));
  s += draw.pick(std::array<std::string_view, 5>{".", "?", "!", "", " ."});
  if (draw.chance(20)) s += " " + std::string(draw.pick(kContractions)) + " true.";
  return s;
}

std::string fragment(Draw& draw) {
  switch (draw.below(11)) {
    case 0:
      return claim(draw);
    case 1:
      return std::string(draw.pick(kContractions));
    case 2:
      return std::string(draw.pick(kSpecials));
    case 3:
      return std::string(draw.pick(kWords));
    case 4:
      return std::string(draw.pick(kDecomposed));
    case 5:
      return std::string(draw.pick(kEmoji));
    case 6:
      return std::string(draw.pick(kCode));
    case 7:
      return std::string(draw.pick(kSpaces));
    case 8:
      return draw.chance(50) ? number(draw) : std::string(draw.pick(kNumbers));
    case 9:
      return random_code_point(draw);
    default: {
      std::string word(draw.pick(kWords));
      if (draw.chance(50)) {
        for (char& c : word) {
          if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
        }
      }
      return word;
    }
  }
}

}  // namespace

std::vector<std::string> tokenizer_test_strings(std::uint32_t seed, std::size_t count) {
  Draw draw(seed);
  std::vector<std::string> strings = {"",          " ",          "a",   "\n",
                                      "  leading", "trailing  ", "<s>", "<unk>"};
  while (strings.size() < count) {
    std::string s;
    std::size_t parts = 1 + draw.below(draw.chance(10) ? 40 : 8);
    for (std::size_t k = 0; k < parts; ++k) {
      if (k > 0 && draw.chance(70)) s += draw.chance(80) ? " " : std::string(draw.pick(kSpaces));
      s += fragment(draw);
    }
    strings.push_back(std::move(s));
  }
  return strings;
}

}  // namespace hearth::testing
