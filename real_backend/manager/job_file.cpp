#include "real_backend/manager/job_file.hpp"

#include <fmt/format.h>
#include <cmath>
#include <limits>

#include <toml++/toml.h>
#include <set>

#include "policy/errors.hpp"

namespace hearth::real {

namespace fs = std::filesystem;

namespace {

// Whether `p` is a directory; false where it cannot be looked at (a name too long, say), which
// the checks after say more about.
bool looks_like_directory(const fs::path& p) {
  std::error_code error;
  return fs::is_directory(p, error);
}

class JobReader {
 public:
  explicit JobReader(fs::path file) : file_(std::move(file)), dir_(file_.parent_path()) {}

  std::string where(const toml::node& n) const {
    return fmt::format("{}:{}", file_.string(), n.source().begin.line);
  }
  [[noreturn]] void fail(const toml::node& n, const std::string& what) const {
    throw InputError(fmt::format("{}: {}", where(n), what));
  }

  void only_keys(const toml::table& t, const std::set<std::string>& known,
                 const char* section) const {
    for (const auto& [key, value] : t) {
      if (!known.count(std::string(key.str()))) {
        fail(value, fmt::format("unknown key \"{}\" in {}", key.str(), section));
      }
    }
  }

  std::string text(const toml::table& t, const char* key, std::string fallback) const {
    const toml::node* n = t.get(key);
    if (!n) return fallback;
    if (!n->is_string()) fail(*n, fmt::format("{} must be a string", key));
    return n->as_string()->get();
  }
  std::optional<std::string> optional_text(const toml::table& t, const char* key) const {
    if (!t.get(key)) return std::nullopt;
    return text(t, key, "");
  }
  std::string required_text(const toml::table& t, const char* key, const char* section) const {
    if (!t.get(key)) fail(t, fmt::format("{} needs {}", section, key));
    return text(t, key, "");
  }
  double number(const toml::table& t, const char* key, double fallback, double min) const {
    const toml::node* n = t.get(key);
    if (!n) return fallback;
    if (!n->is_number()) fail(*n, fmt::format("{} must be a number", key));
    // toml++ gives no double for an integer past 2^53 (it would not be exact): this takes the
    // nearest.
    const double v = n->is_integer() ? static_cast<double>(n->as_integer()->get())
                                     : n->as_floating_point()->get();
    if (std::isnan(v)) fail(*n, fmt::format("{} must be a number, not nan", key));
    if (v < min) fail(*n, fmt::format("{} must be at least {}", key, min));
    return v;
  }
  // A number at least `min` that Int holds (inf does not), its fraction dropped.
  template <class Int>
  Int whole(const toml::table& t, const char* key, double fallback, double min) const {
    const double v = number(t, key, fallback, min);
    if (!(v < std::ldexp(1.0, std::numeric_limits<Int>::digits))) {
      fail(*t.get(key), fmt::format("{} must be at most {}", key, std::numeric_limits<Int>::max()));
    }
    return static_cast<Int>(v);
  }
  // A number at least 1, its fraction dropped.
  std::optional<std::uint64_t> optional_count(const toml::table& t, const char* key) const {
    if (!t.get(key)) return std::nullopt;
    return whole<std::uint64_t>(t, key, 0, 1);
  }
  // The table at `key` (`name` in messages), or null when there is none.
  const toml::table* table(const toml::table& t, const char* key, const char* name) const {
    const toml::node* n = t.get(key);
    if (n && !n->is_table()) fail(*n, fmt::format("{} must be a table", name));
    return n ? n->as_table() : nullptr;
  }
  fs::path path(const std::string& p) const {
    fs::path r = p;
    return r.is_absolute() ? r : fs::absolute(dir_ / r).lexically_normal();
  }

  // The file, or `contents` as what it holds.
  JobFile read(std::optional<std::string_view> contents = std::nullopt) {
    toml::table root;
    try {
      root = contents ? toml::parse(*contents, file_.string()) : toml::parse_file(file_.string());
    } catch (const toml::parse_error& e) {
      throw InputError(
          fmt::format("{}:{}: {}", file_.string(), e.source().begin.line, e.description()));
    }
    only_keys(root, {"output", "state", "policy", "contexts", "factory", "transfer"}, "the job");
    JobFile job;
    job.file = file_;
    job.output = path(text(root, "output", file_.stem().string() + ".out.jsonl"));
    job.state_dir = path(text(root, "state", file_.stem().string() + ".state"));
    if (const toml::table* p = table(root, "policy", "[policy]")) read_policy(*p, job);
    if (const toml::table* f = table(root, "factory", "[factory]")) read_factory(*f, job.factory);
    if (const toml::table* t = table(root, "transfer", "[transfer]")) {
      only_keys(*t, {"encryption", "streams"}, "[transfer]");
      job.transfer_encryption = boolean(*t, "encryption", job.transfer_encryption);
      job.transfer_streams = static_cast<int>(integer(*t, "streams", job.transfer_streams, 1, 16));
    }
    const toml::node* cs = root.get("contexts");
    if (!cs || !cs->is_array_of_tables() || cs->as_array()->empty()) {
      throw InputError(fmt::format("{}: the job needs at least one [[contexts]]", file_.string()));
    }
    std::set<std::string> names;
    for (const toml::node& c : *cs->as_array()) {
      job.contexts.push_back(read_context(*c.as_table()));
      if (!names.insert(job.contexts.back().name).second) {
        fail(c, fmt::format("context name \"{}\" is used twice", job.contexts.back().name));
      }
    }
    return job;
  }

  void read_policy(const toml::table& t, JobFile& job) const {
    only_keys(t,
              {"placement", "eviction", "granularity", "replication", "batch_size", "upload_cap",
               "task_overhead_s", "inference_s", "shared_storage_Bps", "max_task_failures",
               "verify", "verify_tolerance", "quarantine_after", "pipeline"},
              "[policy]");
    EngineConfig& e = job.engine;
    job.verify = number(t, "verify", 0, 0);
    if (job.verify > 1) fail(*t.get("verify"), "verify is a share of tasks, from 0 to 1");
    job.verify_tolerance = number(t, "verify_tolerance", job.verify_tolerance, 0);
    job.quarantine_after =
        static_cast<int>(integer(t, "quarantine_after", job.quarantine_after, 1, 1000000));
    // A placement brings the eviction and granularity it is meant for, as in the simulator.
    apply_overrides(e.policies, {.placement = optional_text(t, "placement"),
                                 .eviction = optional_text(t, "eviction"),
                                 .granularity = optional_text(t, "granularity"),
                                 .replication = optional_text(t, "replication"),
                                 .batch_size = optional_count(t, "batch_size"),
                                 .upload_cap = optional_count(t, "upload_cap")});
    e.estimates.task_overhead_s = number(t, "task_overhead_s", e.estimates.task_overhead_s, 0);
    e.estimates.inference_s = number(t, "inference_s", e.estimates.inference_s, 1e-9);
    e.estimates.shared_storage_Bps =
        number(t, "shared_storage_Bps", e.estimates.shared_storage_Bps, 1);
    e.max_task_failures = whole<int>(t, "max_task_failures", e.max_task_failures, 1);
    e.pipeline = boolean(t, "pipeline", e.pipeline);
  }

  // A whole number in [min, max].
  std::int64_t integer(const toml::table& t, const char* key, std::int64_t fallback,
                       std::int64_t min,
                       std::int64_t max = std::numeric_limits<std::int32_t>::max()) const {
    const toml::node* n = t.get(key);
    if (!n) return fallback;
    if (!n->is_integer()) fail(*n, fmt::format("{} must be a whole number", key));
    std::int64_t v = n->as_integer()->get();
    if (v < min) fail(*n, fmt::format("{} must be at least {}", key, min));
    if (v > max) fail(*n, fmt::format("{} must be at most {}", key, max));
    return v;
  }
  bool boolean(const toml::table& t, const char* key, bool fallback) const {
    const toml::node* n = t.get(key);
    if (!n) return fallback;
    if (!n->is_boolean()) fail(*n, fmt::format("{} must be true or false", key));
    return n->as_boolean()->get();
  }
  std::vector<std::string> texts(const toml::table& t, const char* key) const {
    std::vector<std::string> out;
    const toml::node* n = t.get(key);
    if (!n) return out;
    if (!n->is_array()) fail(*n, fmt::format("{} must be an array of strings", key));
    for (const toml::node& e : *n->as_array()) {
      if (!e.is_string()) fail(e, fmt::format("{} must be an array of strings", key));
      out.push_back(e.as_string()->get());
    }
    return out;
  }
  // A string without white space (a partition, a host:port).
  std::string word(const toml::table& t, const char* key) const {
    std::string v = text(t, key, "");
    if (v.find_first_of(" \t\r\n") != std::string::npos)
      fail(*t.get(key), fmt::format("{} must be one word", key));
    return v;
  }
  // Fails unless `v`, the value of `key`, is a single line.
  void one_line(const toml::table& t, const char* key, const std::string& v) const {
    if (v.find_first_of("\r\n") != std::string::npos) {
      fail(*t.get(key), fmt::format("{} must be one line", key));
    }
  }

  void read_factory(const toml::table& t, FactorySettings& f) const {
    only_keys(t,
              {"kind",
               "min_workers",
               "max_workers",
               "inferences_per_worker",
               "submit_batch",
               "submit_interval_s",
               "poll_interval_s",
               "manager",
               "hearth",
               "keys",
               "per_job_keys",
               "work_dir",
               "cache",
               "worker_args",
               "gpus",
               "cpus",
               "memory_mb",
               "disk_mb",
               "time_limit_s",
               "slurm",
               "htcondor"},
              "[factory]");
    f.kind = text(t, "kind", "");
    if (t.get("kind") && f.kind != "local" && f.kind != "slurm" && f.kind != "htcondor") {
      fail(*t.get("kind"), "kind must be \"slurm\", \"htcondor\" or \"local\"");
    }
    f.min_workers = static_cast<int>(integer(t, "min_workers", 0, 0));
    f.max_workers = static_cast<int>(integer(t, "max_workers", 0, 1));
    if (t.get("max_workers") && f.min_workers > f.max_workers) {
      fail(*t.get("min_workers"),
           fmt::format("min_workers {} is more than max_workers {}", f.min_workers, f.max_workers));
    }
    f.inferences_per_worker = static_cast<std::uint64_t>(
        integer(t, "inferences_per_worker", 0, 1, std::numeric_limits<std::int64_t>::max()));
    f.submit_batch = static_cast<int>(integer(t, "submit_batch", f.submit_batch, 1));
    f.submit_interval_s = number(t, "submit_interval_s", f.submit_interval_s, 0);
    f.poll_interval_s = number(t, "poll_interval_s", f.poll_interval_s, 0.1);
    f.manager = word(t, "manager");
    if (!f.manager.empty() && f.manager.rfind(':') == std::string::npos) {
      fail(*t.get("manager"), "manager must be host:port");
    }
    if (t.get("hearth")) f.hearth = path(text(t, "hearth", ""));
    f.per_job_keys = boolean(t, "per_job_keys", f.per_job_keys);
    if (t.get("keys")) {
      f.keys = path(text(t, "keys", ""));
      if (f.per_job_keys) {
        fail(*t.get("keys"),
             "keys names the shared worker key, which jobs use only with per_job_keys = false");
      }
    }
    if (t.get("work_dir")) f.work_dir = path(text(t, "work_dir", ""));
    f.cache = text(t, "cache", "");
    if (f.cache.find_first_of("\"`\\\r\n") != std::string::npos) {
      fail(*t.get("cache"),
           "cache must not hold \", `, \\ or a newline (the job's shell expands it)");
    }
    f.worker_args = texts(t, "worker_args");
    f.gpus = static_cast<int>(integer(t, "gpus", 0, 0));
    f.cpus = static_cast<int>(integer(t, "cpus", 1, 1));
    f.memory_mb = static_cast<std::uint64_t>(
        integer(t, "memory_mb", 0, 0, std::numeric_limits<std::int64_t>::max()));
    f.disk_mb = static_cast<std::uint64_t>(
        integer(t, "disk_mb", 0, 0, std::numeric_limits<std::int64_t>::max()));
    f.time_limit_s = number(t, "time_limit_s", 0, 0);
    if (const toml::table* s = table(t, "slurm", "[factory.slurm]")) read_slurm(*s, f.slurm);
    if (const toml::table* h = table(t, "htcondor", "[factory.htcondor]")) {
      read_htcondor(*h, f.htcondor);
    }
  }

  void read_slurm(const toml::table& t, SlurmSettings& s) const {
    only_keys(t, {"partition", "qos", "account", "gres", "array", "sbatch_args"},
              "[factory.slurm]");
    s.partition = word(t, "partition");
    s.qos = word(t, "qos");
    s.account = word(t, "account");
    s.gres = word(t, "gres");
    s.array = boolean(t, "array", s.array);
    s.sbatch_args = texts(t, "sbatch_args");
  }

  void read_htcondor(const toml::table& t, HTCondorSettings& h) const {
    only_keys(t, {"requirements", "submit_lines", "transfer_keys"}, "[factory.htcondor]");
    h.requirements = text(t, "requirements", "");
    one_line(t, "requirements", h.requirements);
    h.submit_lines = texts(t, "submit_lines");
    for (const std::string& line : h.submit_lines)
      one_line(t, "submit_lines", line);
    h.transfer_keys = boolean(t, "transfer_keys", h.transfer_keys);
  }

  std::int32_t token(const toml::node& n) const {
    if (n.is_integer()) {
      std::int64_t v = n.as_integer()->get();
      if (v < 0 || v > std::numeric_limits<std::int32_t>::max()) fail(n, "bad token id");
      return static_cast<std::int32_t>(v);
    }
    if (n.is_string() && n.as_string()->get().size() == 1) {
      return static_cast<unsigned char>(n.as_string()->get()[0]);
    }
    fail(n, "a token is an integer id or a one-byte string");
  }
  // A label's tokens: one token, or an array of them.
  std::vector<std::int32_t> tokens(const toml::node& n) const {
    if (!n.is_array()) return {token(n)};
    std::vector<std::int32_t> out;
    for (const toml::node& k : *n.as_array())
      out.push_back(token(k));
    if (out.empty()) fail(n, "a label needs at least one token");
    return out;
  }
  std::vector<std::string> strings(const toml::node& n, const char* key) const {
    if (!n.is_array()) fail(n, fmt::format("{} must be an array of strings", key));
    std::vector<std::string> out;
    for (const toml::node& e : *n.as_array()) {
      if (!e.is_string()) fail(e, fmt::format("{} must be an array of strings", key));
      out.push_back(e.as_string()->get());
    }
    return out;
  }

  JobContext read_context(const toml::table& t) const {
    only_keys(
        t, {"name",         "model",          "format", "source",     "shared_path", "task",
            "dataset",      "template",       "chat",   "system",     "labels",      "label_texts",
            "label_tokens", "max_new_tokens", "stop",   "stop_token", "temperature", "top_p",
            "seed",         "max_batch",      "init_s"},
        "[[contexts]]");
    JobContext c;
    c.name = required_text(t, "name", "[[contexts]]");
    if (c.name.empty() || c.name.find_first_of(" \t\n") != std::string::npos) {
      fail(*t.get("name"), "a context name must be a word without spaces");
    }
    c.model = path(required_text(t, "model", "[[contexts]]"));
    c.dataset = path(required_text(t, "dataset", "[[contexts]]"));
    std::string format = text(t, "format", looks_like_directory(c.model) ? "hf" : "torchscript");
    if (format == "hf") {
      c.format = ModelFormat::hf;
    } else if (format == "torchscript") {
      c.format = ModelFormat::torchscript;
    } else if (format == "bytes") {
      c.format = ModelFormat::bytes;
    } else {
      fail(*t.get("format"), "format must be \"hf\", \"torchscript\" or \"bytes\"");
    }
    if ((c.format == ModelFormat::hf) != looks_like_directory(c.model) &&
        c.format != ModelFormat::bytes) {
      fail(t.get("format") ? *t.get("format") : *t.get("model"),
           c.format == ModelFormat::hf
               ? fmt::format("format \"hf\" needs a model directory; {} is not one",
                             c.model.string())
               : fmt::format("{} is a directory: a Hugging Face model has format \"hf\"",
                             c.model.string()));
    }
    c.inference.has_model = c.format != ModelFormat::bytes;
    std::string source = text(t, "source", "manager");
    if (source != "manager" && source != "shared") {
      fail(*t.get("source"), "source must be \"manager\" or \"shared\"");
    }
    c.origin = source == "manager" ? ContextOrigin::manager : ContextOrigin::shared_path;
    c.shared_path = t.get("shared_path") ? fs::path(text(t, "shared_path", "")) : c.model;
    std::string task = text(t, "task", "classify");
    std::optional<TaskKind> kind = task_kind_named(task);
    if (!kind) fail(*t.get("task"), "task must be \"classify\", \"generate\" or \"noop\"");
    c.inference.task = *kind;
    if (c.inference.task != TaskKind::noop && !c.inference.has_model) {
      fail(t, fmt::format("task {} needs a model (format \"hf\" or \"torchscript\")", task));
    }
    bool hf = c.format == ModelFormat::hf;
    auto only_hf = [&](const char* key) {
      if (t.get(key) && !hf) fail(*t.get(key), fmt::format("{} needs a model directory", key));
    };
    auto not_hf = [&](const char* key, const char* instead) {
      if (t.get(key) && hf) {
        fail(*t.get(key),
             fmt::format("{} is for model files; a model directory uses {}", key, instead));
      }
    };
    only_hf("chat");
    only_hf("system");
    only_hf("label_texts");
    not_hf("label_tokens", "label_texts");
    not_hf("stop_token", "stop (its tokenizer's end-of-sequence tokens stop it already)");
    c.template_text = text(t, "template", "{prompt}");  // "": inputs are the rows' input_ids
    if (!c.template_text.empty()) c.prompt = PromptTemplate(c.template_text);
    if (hf && c.template_text.empty()) {
      fail(*t.get("template"), "a model directory needs a template: its tokenizer makes the ids");
    }
    c.chat = boolean(t, "chat", false);
    c.system = optional_text(t, "system");
    if (c.system && !c.chat) fail(*t.get("system"), "system needs chat = true");
    if (c.inference.task == TaskKind::classify) read_labels(t, c);
    c.inference.max_new_tokens = whole<std::uint32_t>(t, "max_new_tokens", 16, 1);
    if (const toml::node* n = t.get("stop_token")) c.inference.stop_tokens = tokens(*n);
    if (const toml::node* n = t.get("stop")) {
      c.inference.stop_strings = strings(*n, "stop");
      for (const std::string& s : c.inference.stop_strings) {
        if (s.empty()) fail(*n, "a stop string is not empty");
      }
    }
    c.inference.temperature = static_cast<float>(number(t, "temperature", 0, 0));
    c.inference.top_p = static_cast<float>(number(t, "top_p", 1, 0));
    if (c.inference.top_p <= 0 || c.inference.top_p > 1) {
      fail(*t.get("top_p"), "top_p must be in (0, 1]");
    }
    c.seed = whole<std::uint64_t>(t, "seed", 0, 0);
    c.inference.max_batch = whole<std::uint32_t>(t, "max_batch", 0, 0);
    c.init_s = number(t, "init_s", 0, 0);
    return c;
  }

  void read_labels(const toml::table& t, JobContext& c) const {
    const toml::node* labels = t.get("labels");
    if (!labels) fail(t, "task classify needs labels");
    c.inference.labels = strings(*labels, "labels");
    if (c.inference.labels.empty()) fail(*labels, "labels must not be empty");
    std::set<std::string> seen;
    for (const std::string& l : c.inference.labels) {
      if (!seen.insert(l).second) fail(*labels, fmt::format("label \"{}\" appears twice", l));
    }
    if (c.format == ModelFormat::hf) {
      if (const toml::node* n = t.get("label_texts")) {
        c.label_texts = strings(*n, "label_texts");
        if (c.label_texts.size() != c.inference.labels.size())
          fail(*n, "labels and label_texts must be equally long");
        for (const std::string& l : c.label_texts) {
          if (l.empty()) fail(*n, "a label text is not empty");
        }
      } else {
        // As evaluation harnesses score choices: after a space, or at the start of the reply.
        for (const std::string& l : c.inference.labels)
          c.label_texts.push_back(c.chat ? l : " " + l);
      }
      return;
    }
    const toml::node* given = t.get("label_tokens");
    if (!given) fail(t, "task classify on a model file needs label_tokens");
    if (!given->is_array()) fail(*given, "label_tokens must be an array");
    for (const toml::node& k : *given->as_array())
      c.inference.label_tokens.push_back(tokens(k));
    if (c.inference.labels.size() != c.inference.label_tokens.size()) {
      fail(*labels, "labels and label_tokens must be equally long");
    }
  }

 private:
  fs::path file_;
  fs::path dir_;
};

}  // namespace

JobFile read_job_file(const fs::path& file) {
  std::error_code error;
  if (!fs::exists(file, error))
    throw InputError(fmt::format("{}: no such job file", file.string()));
  return JobReader(fs::absolute(file)).read();
}

JobFile read_job_text(std::string_view text, const fs::path& file) {
  return JobReader(fs::absolute(file)).read(text);
}

}  // namespace hearth::real
