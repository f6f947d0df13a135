#include "real_backend/manager/result_check.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

namespace hearth::real {

namespace {

using nlohmann::json;

// A tie between the best scores is broken by label order; allow that much rounding.
constexpr double kScoreSlack = 1e-6;

// A worker's text in a problem, cut short: a worker chooses what goes into the log.
std::string shown(const std::string& text) {
  constexpr std::size_t kMost = 60;
  if (text.size() <= kMost) return text;
  return fmt::format("{}... ({} bytes)", text.substr(0, kMost), text.size());
}

ResultProblem malformed(std::string what) {
  return {std::move(what), true};
}

ResultProblem classify_problem(const InferenceSettings& s, const json& r) {
  if (!r.contains("label") || !r["label"].is_string()) return malformed("no label");
  if (!r.contains("scores") || !r["scores"].is_object()) return malformed("no scores");
  const std::string label = r["label"].get<std::string>();
  if (std::find(s.labels.begin(), s.labels.end(), label) == s.labels.end()) {
    return malformed(fmt::format("label \"{}\" is not one of the job's", shown(label)));
  }
  const json& scores = r["scores"];
  if (scores.size() != s.labels.size()) {
    return malformed(fmt::format("{} scores for {} labels", scores.size(), s.labels.size()));
  }
  for (const std::string& l : s.labels) {
    const auto it = scores.find(l);
    if (it == scores.end()) return malformed(fmt::format("no score for label \"{}\"", l));
    if (!it->is_number() && !it->is_null()) {
      // Its type, not its text (which may be of any size).
      return malformed(fmt::format("the score of \"{}\" is {}, not a number", l, it->type_name()));
    }
  }
  // The shape is right; what is left a broken model can give (NaN is null in JSON).
  double best = -INFINITY;
  for (const std::string& l : s.labels) {
    const json& score = scores[l];
    if (!score.is_number()) return {fmt::format("the score of \"{}\" is not a number", l)};
    double v = score.get<double>();
    if (!std::isfinite(v) || v > kScoreSlack) {
      return {fmt::format("the score of \"{}\" is {}, not a log-probability", l, v)};
    }
    best = std::max(best, v);
  }
  if (scores[label].get<double>() < best - kScoreSlack) {
    return {fmt::format("label \"{}\" is not the best scored", label)};
  }
  return {};
}

// Every problem of a generated result is the worker's: a model only picks tokens.
ResultProblem generate_problem(const InferenceSettings& s, const json& r) {
  if (!r.contains("text") || !r["text"].is_string()) return malformed("no text");
  if (!r.contains("tokens") || !r["tokens"].is_array()) return malformed("no tokens");
  if (!r.contains("finish") || !r["finish"].is_string()) return malformed("no finish");
  const json& tokens = r["tokens"];
  for (const json& t : tokens) {
    if (!t.is_number_integer() || t.get<std::int64_t>() < 0) {
      return malformed("a token that is not an id");
    }
  }
  std::string finish = r["finish"].get<std::string>();
  if (finish != "stop" && finish != "length") {
    return malformed(fmt::format("finish \"{}\"", shown(finish)));
  }
  if (tokens.size() > s.max_new_tokens) {
    return malformed(
        fmt::format("{} tokens, more than max_new_tokens {}", tokens.size(), s.max_new_tokens));
  }
  if (finish == "length" && tokens.size() != s.max_new_tokens) {
    return malformed(
        fmt::format("finish \"length\" after {} of {} tokens", tokens.size(), s.max_new_tokens));
  }
  return {};
}

ResultProblem one_problem(const InferenceSettings& s, const std::string& text) {
  json r = json::parse(text, nullptr, false);
  if (r.is_discarded()) return malformed("not JSON");
  if (r.is_object() && r.size() == 1 && r.contains("error")) {
    return r["error"].is_string() ? ResultProblem{} : malformed("an error that is not text");
  }
  if (!s.has_model || s.task == TaskKind::noop) {
    return r.is_null() ? ResultProblem{} : malformed("a value for no model");
  }
  if (!r.is_object()) return malformed("not an object");
  return s.task == TaskKind::classify ? classify_problem(s, r) : generate_problem(s, r);
}

}  // namespace

ResultProblem result_problem(const InferenceSettings& s, const std::vector<std::string>& results,
                             std::size_t count) {
  if (results.size() != count)
    return malformed(fmt::format("{} results for {} inputs", results.size(), count));
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (ResultProblem p = one_problem(s, results[i]); !p.what.empty()) {
      p.what = fmt::format("result {}: {}", i, p.what);
      return p;
    }
  }
  return {};
}

std::string results_differ(const InferenceSettings& s, const std::vector<std::string>& a,
                           const std::vector<std::string>& b, double tolerance) {
  if (a.size() != b.size()) return fmt::format("{} results against {}", a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    json x = json::parse(a[i], nullptr, false), y = json::parse(b[i], nullptr, false);
    bool x_error = x.is_object() && x.contains("error"),
         y_error = y.is_object() && y.contains("error");
    if (x_error || y_error) {
      if (x_error != y_error) return fmt::format("result {}: an error against a result", i);
      continue;
    }
    if (s.task == TaskKind::classify && x.is_object() && y.is_object()) {
      if (x["label"] != y["label"]) {
        return fmt::format("result {}: label {} against {}", i, x["label"].dump(),
                           y["label"].dump());
      }
      for (const std::string& l : s.labels) {
        double d = std::abs(x["scores"][l].get<double>() - y["scores"][l].get<double>());
        if (!(d <= tolerance)) {
          return fmt::format("result {}: the score of \"{}\" differs by {:.3g} (tolerance {})", i,
                             l, d, tolerance);
        }
      }
    } else if (s.task == TaskKind::generate && x.is_object() && y.is_object()) {
      if (x["tokens"] != y["tokens"]) return fmt::format("result {}: other tokens", i);
    } else if (x != y) {
      return fmt::format("result {}: {} against {}", i, a[i], b[i]);
    }
  }
  return {};
}

}  // namespace hearth::real
