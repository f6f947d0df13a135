// Directory contexts end to end: `hearth run` with worker processes, a context that is a model
// directory (several files, a nested subdirectory), staged from the manager, from a shared
// directory and from peers. Every worker keeps the directory's pack, checked by its manifest.
// The workers' model is the gate's stand-in (tests/real/gate.hpp): it loads any bytes, and holds
// inferences until the test lets them run, so that a worker keeps the context mid-task while the
// next one joins and must fetch it from that peer.

#include <catch2/catch_test_macros.hpp>

#include "real_backend/wire/pack.hpp"
#include "tests/real/hearth_process.hpp"
#include "tests/real/helpers.hpp"

using namespace hearth;
using namespace hearth::testing;

namespace {

constexpr int kRows = 300;

// A tokenizer.json of the letters, the space and <unk> (byte-level BPE is not needed to move a
// directory around), for `hearth model init`.
void write_letters_tokenizer(const fs::path& file) {
  std::string vocab = R"("<unk>": 0, "<s>": 1, "</s>": 2, " ": 3)";
  for (int i = 0; i < 26; ++i)
    vocab += ", \"" + std::string(1, static_cast<char>('a' + i)) + "\": " + std::to_string(4 + i);
  write_file(file, R"({"version": "1.0", "added_tokens": [
    {"id": 0, "content": "<unk>", "special": true}, {"id": 1, "content": "<s>", "special": true},
    {"id": 2, "content": "</s>", "special": true}],
  "model": {"type": "BPE", "unk_token": "<unk>", "merges": [], "vocab": {)" +
                       vocab + "}}}");
}

// A job classifying kRows prompts with the model directory `model` beside it (a random model
// from `hearth model init`), in tasks of 3.
fs::path write_directory_job(const TempDir& dir, const std::string& source) {
  write_letters_tokenizer(dir / "tokenizer.json");
  REQUIRE(
      exit_status(start_hearth({"model", "init", "--arch", "llama", "--tokenizer",
                                (dir / "tokenizer.json").string(), "-o", (dir / "model").string()},
                               dir / "init.log")) == 0);
  write_prompts(dir / "prompts.jsonl", kRows);
  write_file(dir / "job.toml", R"(output = "out.jsonl"
[policy]
batch_size = 3
task_overhead_s = 0.005
inference_s = 0.001
[[contexts]]
name = "hf"
model = "model"
source = ")" + source + R"("
task = "classify"
dataset = "prompts.jsonl"
labels = ["yes", "no"]
)");
  return dir / "job.toml";
}

// `hearth run` of the job in `dir`, and its workers, each started when the test says.
class DirectoryRun {
 public:
  explicit DirectoryRun(const TempDir& dir) : dir_(dir), gate_(dir / "gate") {
    manager_ = start_hearth(
        {"run", (dir / "job.toml").string(), "--decision-log", (dir / "decisions").string()},
        dir / "manager.log");
    address_ = manager_address(dir / "manager.log");
  }

  pid_t manager() const { return manager_; }
  Gate& gate() { return gate_; }

  pid_t start_worker(const std::string& name) {
    std::vector<std::string> env = behind(gate_);
    env.push_back("HEARTH_TEST_STAND_IN_MODEL=1");
    pid_t pid = start_hearth(
        {"worker", "--manager", address_, "--keys", (dir_ / "job.state/keys/worker.key").string(),
         "--name", name, "--cache", (dir_ / ("cache-" + name)).string(), "--device", "cpu",
         "--keep-cache"},  // the tests look at the copies after the run
        dir_ / (name + ".log"), env);
    workers_.push_back(pid);
    return pid;
  }

  // Waits until worker `name` has its copy of the context, checked and in place.
  void wait_for_copy(const std::string& name) {
    INFO("waiting for " << name << "'s copy of the context");
    REQUIRE(wait_for([&] { return fs::exists(pack_of(name)) || !still_running(manager_); }, 120));
    REQUIRE(fs::exists(pack_of(name)));
  }

  fs::path pack_of(const std::string& name) const {
    return dir_ / ("cache-" + name) / "context-0.bin";
  }

  // Lets every inference run and waits for the manager and its workers to end.
  void finish() {
    gate_.open();
    CHECK(exit_status(manager_) == 0);
    for (pid_t w : workers_)
      CHECK(exit_status(w, 30) == 0);
  }

  // How many of the manager's commands contain `text`.
  int commands_with(const std::string& text) const {
    return lines_with(dir_ / "decisions/commands.log", text);
  }

 private:
  const TempDir& dir_;
  Gate gate_;
  pid_t manager_ = 0;
  std::string address_;
  std::vector<pid_t> workers_;
};

}  // namespace

TEST_CASE("a model directory reaches three workers, from the manager and then from peers") {
  TempDir dir;
  write_directory_job(dir, "manager");
  DirectoryRun run(dir);
  pid_t a = run.start_worker("w-a");
  // a holds the context, in the middle of a task whose next inference waits: the run cannot end,
  // and b, then c, joining now, are seeded from a peer.
  run.gate().allow(3);
  REQUIRE(wait_for([&] { return run.gate().used() == 3 && run.gate().waiting(a); }, 120));
  run.start_worker("w-b");
  run.wait_for_copy("w-b");
  run.start_worker("w-c");
  run.wait_for_copy("w-c");
  run.finish();

  CHECK(ids_once(dir / "out.jsonl") == prompt_ids(kRows));
  CHECK(run.commands_with(" c0 disk from shared") == 1);  // the manager's copy, to a
  CHECK(run.commands_with(" c0 disk from peer:") == 2);   // b and c
  CHECK(lines_with(dir / "manager.log", "a manifest of 4 files, ") == 1);
  std::vector<real::PackedFile> files = real::pack_directory(dir / "model");
  for (const char* w : {"w-a", "w-b", "w-c"}) {
    INFO(w);
    CHECK(real::pack_file_error(run.pack_of(w), files).empty());
    CHECK(fs::file_size(run.pack_of(w)) == real::pack_size(real::pack_directory(dir / "model")));
  }
}

TEST_CASE("a model directory on the shared filesystem is packed by the worker that reads it") {
  TempDir dir;
  write_directory_job(dir, "shared");
  DirectoryRun run(dir);
  pid_t a = run.start_worker("w-a");
  run.gate().allow(3);
  REQUIRE(wait_for([&] { return run.gate().used() == 3 && run.gate().waiting(a); }, 120));
  run.start_worker("w-b");
  run.wait_for_copy("w-b");
  run.finish();

  CHECK(ids_once(dir / "out.jsonl") == prompt_ids(kRows));
  CHECK(run.commands_with(" c0 disk from shared") == 1);
  CHECK(run.commands_with(" c0 disk from peer:") == 1);
  std::vector<real::PackedFile> files = real::pack_directory(dir / "model");
  for (const char* w : {"w-a", "w-b"}) {
    INFO(w);
    CHECK(real::pack_file_error(run.pack_of(w), files).empty());
  }
}

TEST_CASE("a model directory changed under a running job ends the run, and no worker keeps it") {
  TempDir dir;
  write_directory_job(dir, "manager");
  DirectoryRun run(dir);
  // The manager has its manifest; then the weights grow by a byte.
  fs::path weights = dir / "model/model.safetensors";
  std::uintmax_t size = fs::file_size(weights);
  std::ofstream(weights, std::ios::app) << 'x';
  run.start_worker("w-a");
  wait_for_log(dir / "manager.log",
               "context hf cannot be served: " + weights.string() + " has " +
                   std::to_string(size + 1) + " bytes, " + std::to_string(size) +
                   " when the job started: the directory changed",
               run.manager());
  wait_for_log(dir / "w-a.log", "the directory changed", run.manager());
  CHECK(!fs::exists(run.pack_of("w-a")));
  // No copy can be right: the run ends rather than wait for one.
  CHECK(exit_status(run.manager(), 60) == 2);
  CHECK(lines_with(dir / "manager.log",
                   "hearth: the run cannot go on: context hf cannot be served by the manager") ==
        1);
}
