#include "real_backend/status/status_snapshot.hpp"

#include <fmt/core.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "policy/errors.hpp"

namespace hearth::real {

namespace {

using nlohmann::json;

// One object of the snapshot and the path that leads to it ("workers[2].task"), so that every
// complaint names the field.
class Fields {
 public:
  Fields(const json& object, std::string path, const std::string& where)
      : object_(object), path_(std::move(path)), where_(where) {
    if (!object_.is_object()) fail(path_, "expected an object");
  }

  std::uint64_t count(const char* key) const {
    const json& v = at(key);
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0)) {
      fail(name(key), "expected a non-negative integer, got " + v.dump());
    }
    return v.get<std::uint64_t>();
  }

  std::int64_t integer(const char* key) const {
    const json& v = at(key);
    if (!v.is_number_integer()) fail(name(key), "expected an integer, got " + v.dump());
    return v.get<std::int64_t>();
  }

  double number(const char* key) const {
    const json& v = at(key);
    if (!v.is_number() || !std::isfinite(v.get<double>())) {
      fail(name(key), "expected a number, got " + v.dump());
    }
    return v.get<double>();
  }

  std::optional<double> number_or_null(const char* key) const {
    if (at(key).is_null()) return std::nullopt;
    return number(key);
  }

  std::string text(const char* key) const {
    const json& v = at(key);
    if (!v.is_string()) fail(name(key), "expected a string, got " + v.dump());
    return v.get<std::string>();
  }

  std::string text_or_null(const char* key) const {
    return at(key).is_null() ? std::string() : text(key);
  }

  std::vector<std::string> texts(const char* key) const {
    std::vector<std::string> out;
    const json& v = at(key);
    if (!v.is_array()) fail(name(key), "expected an array of strings, got " + v.dump());
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_string()) {
        fail(fmt::format("{}[{}]", name(key), i), "expected a string, got " + v[i].dump());
      }
      out.push_back(v[i].get<std::string>());
    }
    return out;
  }

  Fields object(const char* key) const { return Fields(at(key), name(key), where_); }

  bool is_null(const char* key) const { return at(key).is_null(); }

  // Calls read(Fields) for each element of the array `key`, which must hold objects.
  template <typename Read>
  void each(const char* key, Read read) const {
    const json& v = at(key);
    if (!v.is_array()) fail(name(key), "expected an array, got " + v.dump());
    for (std::size_t i = 0; i < v.size(); ++i)
      read(Fields(v[i], fmt::format("{}[{}]", name(key), i), where_));
  }

 private:
  const json& at(const char* key) const {
    auto it = object_.find(key);
    if (it == object_.end()) fail(name(key), "missing");
    return *it;
  }
  std::string name(const char* key) const { return path_.empty() ? key : path_ + "." + key; }
  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw InputError(fmt::format("{}: {}: {}", where_, field, what));
  }

  const json& object_;
  std::string path_;
  const std::string& where_;
};

StatusWorker read_worker(const Fields& f) {
  StatusWorker w;
  w.id = f.count("id");
  w.name = f.text("name");
  w.gpu_type = f.text("gpu_type");
  w.host = f.text("host");
  w.state = f.text("state");
  w.since_s = f.number("since_s");
  if (!f.is_null("task")) {
    Fields t = f.object("task");
    w.task =
        StatusTask{t.count("task"), t.count("attempt"), t.text("context"), t.count("inferences")};
  }
  Fields c = f.object("contexts");
  w.gpu = c.texts("gpu");
  w.host_memory = c.texts("host");
  w.disk = c.texts("disk");
  w.tasks_done = f.count("tasks_done");
  w.tasks_failed = f.count("tasks_failed");
  w.inferences = f.count("inferences");
  w.speed = f.number_or_null("speed");
  w.quarantined = f.text("quarantined");
  w.left_s = f.number_or_null("left_s");
  return w;
}

}  // namespace

StatusSnapshot parse_status(const std::string& text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw InputError(fmt::format("{}: not JSON: {}", where, e.what()));
  }
  Fields f(j, "", where);
  StatusSnapshot s;
  s.version = static_cast<int>(f.integer("version"));
  if (s.version != 1) {
    throw InputError(
        fmt::format("{}: version: {} is not a status this hearth reads (it reads version 1)", where,
                    s.version));
  }
  s.job = f.text("job");
  s.state_dir = f.text("state_dir");
  s.run = f.count("run");
  s.pid = f.integer("pid");
  s.updated_at = f.number("updated_at");
  s.elapsed_s = f.number("elapsed_s");
  s.ended = f.text_or_null("ended");
  if (!s.ended.empty() && s.ended != "finished" && s.ended != "stopped" &&
      s.ended != "no_workers" && s.ended != "failed") {
    throw InputError(
        fmt::format("{}: ended: \"{}\" is none of null, finished, stopped, no_workers, failed",
                    where, s.ended));
  }
  s.end_reason = f.text("end_reason");

  Fields p = f.object("progress");
  s.progress = {p.count("total"),    p.count("done"),        p.count("done_before"),
                p.count("given_up"), p.number("rate_per_s"), p.number_or_null("eta_s")};
  Fields t = f.object("tasks");
  s.tasks = {t.count("running"),         t.count("queued"),   t.count("requeued"),
             t.count("failed_attempts"), t.count("given_up"), t.count("verified"),
             t.count("disagreements")};
  Fields c = f.object("counts");
  s.counts = {c.count("joins"),       c.count("losses"),         c.count("notices"),
              c.count("quarantines"), c.count("stage_failures"), c.count("refused_connections")};
  Fields b = f.object("bytes");
  s.bytes = {b.number("manager"), b.number("shared"), b.number("peer")};

  f.each("gpu_types", [&](const Fields& g) {
    s.gpu_types.push_back({g.text("gpu_type"), g.count("workers"), g.count("inferences"),
                           g.number("busy_s"), g.number("per_s")});
  });
  f.each("workers", [&](const Fields& w) { s.workers.push_back(read_worker(w)); });
  f.each("transfers", [&](const Fields& x) {
    s.transfers.push_back({x.text("worker"), x.text("context"), x.text("tier"), x.text("source"),
                           x.text_or_null("from"), x.number("bytes"), x.number("started_s")});
  });
  f.each("timeline", [&](const Fields& x) {
    // An open segment may say where it ends (elapsed_s) or leave it null.
    std::optional<double> end = x.number_or_null("end_s");
    s.timeline.push_back(
        {x.text("worker"), x.text("state"), x.number("start_s"), end.value_or(s.elapsed_s)});
  });
  f.each("errors", [&](const Fields& x) {
    s.errors.push_back({x.number("t_s"), x.text_or_null("worker"), x.text("what")});
  });
  return s;
}

}  // namespace hearth::real
