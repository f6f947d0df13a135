// Job files and datasets: what they mean, and every mistake reported at its line.

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
#include <sstream>

#include "real_backend/manager/dataset.hpp"
#include "real_backend/manager/job_file.hpp"
#include "real_backend/manager/run_plan.hpp"
#include "real_backend/wire/bulk.hpp"
#include "real_backend/wire/file_hash.hpp"
#include "tests/real/helpers.hpp"
#include "tests/real/log_lines.hpp"

using namespace hearth;
using namespace hearth::real;
using namespace hearth::testing;
using Catch::Matchers::Equals;

namespace {

const char* kClassifyJob = R"(output = "labels.jsonl"
state = "st"
[policy]
placement = "adaptive"
batch_size = 25
[[contexts]]
name = "claims"
model = "m.pt"
dataset = "d.jsonl"
template = "Claim: {claim}\nVerdict:"
labels = ["SUPPORTS", "REFUTES"]
label_tokens = ["S", 82]
)";

}  // namespace

TEST_CASE("a job file gives contexts, paths relative to it and policies") {
  TempDir dir;
  write_file(dir / "job.toml", kClassifyJob);
  JobFile job = read_job_file(dir / "job.toml");
  CHECK(job.output == dir / "labels.jsonl");
  CHECK(job.state_dir == dir / "st");
  CHECK(job.engine.policies.placement == "adaptive");
  // A placement brings its eviction and granularity, as `hearth simulate` gives them.
  CHECK(job.engine.policies.eviction == "cost");
  CHECK(job.engine.policies.granularity == "adaptive");
  CHECK(job.engine.policies.batch_size == 25);
  REQUIRE(job.contexts.size() == 1);
  const JobContext& c = job.contexts[0];
  CHECK(c.name == "claims");
  CHECK(c.model == dir / "m.pt");
  CHECK(c.origin == ContextOrigin::manager);
  CHECK(c.inference.task == TaskKind::classify);
  CHECK(c.inference.labels == std::vector<std::string>{"SUPPORTS", "REFUTES"});
  CHECK(c.format == ModelFormat::torchscript);
  CHECK(c.inference.label_tokens == std::vector<std::vector<std::int32_t>>{{'S'}, {82}});
  DatasetRow row;
  row.fields["claim"] = "Hi";
  CHECK(c.prompt.tokens(row, "d.jsonl") == std::vector<std::int32_t>{'C', 'l', 'a', 'i', 'm', ':',
                                                                     ' ', 'H', 'i', '\n', 'V', 'e',
                                                                     'r', 'd', 'i', 'c', 't', ':'});
}

TEST_CASE("an eviction or granularity named in a job file overrides the placement's own") {
  TempDir dir;
  std::string job_text = kClassifyJob;
  job_text.replace(job_text.find("batch_size = 25"), 15, "eviction = \"lru\"");
  write_file(dir / "job.toml", job_text);
  JobFile job = read_job_file(dir / "job.toml");
  CHECK(job.engine.policies.placement == "adaptive");
  CHECK(job.engine.policies.eviction == "lru");
  CHECK(job.engine.policies.granularity == "adaptive");
}

TEST_CASE("mistakes in a job file are reported with file and line") {
  TempDir dir;
  auto error_of = [&](const std::string& text) {
    return error_reading(dir / "job.toml", text, [](const fs::path& p) { read_job_file(p); });
  };
  std::string base = "[[contexts]]\nname = \"a\"\nmodel = \"m\"\ndataset = \"d\"\n";
  CHECK(error_of(base + "task = \"noop\"\ncolour = 3\n") ==
        ":6: unknown key \"colour\" in [[contexts]]");
  CHECK(error_of(base + "task = \"sing\"\n") ==
        ":5: task must be \"classify\", \"generate\" or \"noop\"");
  CHECK(error_of(base + "task = \"classify\"\n") == ":1: task classify needs labels");
  CHECK(error_of(base + "task = \"classify\"\nlabels = [\"x\"]\n") ==
        ":1: task classify on a model file needs label_tokens");
  CHECK(error_of(base + "task = \"classify\"\nlabels = [\"x\", \"x\"]\nlabel_tokens = [1, 2]\n") ==
        ":6: label \"x\" appears twice");
  CHECK(error_of(base + "task = \"classify\"\nlabels = [\"x\"]\nlabel_tokens = [1, 2]\n") ==
        ":6: labels and label_tokens must be equally long");
  CHECK(error_of(base + "task = \"noop\"\nchat = true\n") == ":6: chat needs a model directory");
  CHECK(error_of(base + "task = \"generate\"\ntop_p = 1.5\n") == ":6: top_p must be in (0, 1]");
  CHECK(error_of(base + "task = \"generate\"\ntemperature = nan\n") ==
        ":6: temperature must be a number, not nan");
  CHECK(error_of(base + "task = \"generate\"\ntop_p = nan\n") ==
        ":6: top_p must be a number, not nan");
  CHECK(error_of("[policy]\nverify = 1.5\n" + base + "task = \"noop\"\n") ==
        ":2: verify is a share of tasks, from 0 to 1");
  CHECK(error_of("[policy]\nquarantine_after = 0\n" + base + "task = \"noop\"\n") ==
        ":2: quarantine_after must be at least 1");
  CHECK(error_of(base + "format = \"hf\"\n") ==
        ":5: format \"hf\" needs a model directory; " + (dir / "m").string() + " is not one");
  CHECK(error_of(base + "task = \"classify\"\nlabel_tokens = [\"ab\"]\nlabels = [\"x\"]\n") ==
        ":6: a token is an integer id or a one-byte string");
  CHECK(error_of(base + "task = \"generate\"\nformat = \"bytes\"\n") ==
        ":1: task generate needs a model (format \"hf\" or \"torchscript\")");
  CHECK(error_of("[policy]\nbatch_size = 0\n" + base + "task = \"noop\"\n") ==
        ":2: batch_size must be at least 1");
  // Numbers no count holds (fuzz_job_file: inf became an unsigned integer, undefined behaviour).
  CHECK(error_of("[policy]\nbatch_size = inf\n" + base + "task = \"noop\"\n") ==
        ":2: batch_size must be at most 18446744073709551615");
  CHECK(error_of("[policy]\nmax_task_failures = 3e9\n" + base + "task = \"noop\"\n") ==
        ":2: max_task_failures must be at most 2147483647");
  CHECK(error_of(base + "task = \"generate\"\nmax_new_tokens = 1e10\n") ==
        ":6: max_new_tokens must be at most 4294967295");
  CHECK(error_of(base + "task = \"generate\"\nseed = 1e300\n") ==
        ":6: seed must be at most 18446744073709551615");
  // An integer past 2^53, which toml++ will not give as a double (std::bad_optional_access).
  write_file(dir / "job.toml",
             "[policy]\ninference_s = 99999999999999999\n" + base + "task = \"noop\"\n");
  CHECK(read_job_file(dir / "job.toml").engine.estimates.inference_s == 1e17);
  CHECK(error_of("output = \"x\"\n") == ": the job needs at least one [[contexts]]");
  CHECK(error_of(base + "task = \"noop\"\n" + base + "task = \"noop\"\n") ==
        ":6: context name \"a\" is used twice");
  CHECK(error_of("output = [\n").rfind(":1: ", 0) == 0);  // TOML syntax, with its line
  CHECK(error_of("[transfer]\nstreams = 0\n" + base + "task = \"noop\"\n") ==
        ":2: streams must be at least 1");
  CHECK(error_of("[transfer]\nencryption = \"no\"\n" + base + "task = \"noop\"\n") ==
        ":2: encryption must be true or false");
  CHECK(error_of("[policy]\npipeline = 1\n" + base + "task = \"noop\"\n") ==
        ":2: pipeline must be true or false");
  CHECK(error_of("[transfer]\ncompress = true\n" + base + "task = \"noop\"\n") ==
        ":2: unknown key \"compress\" in [transfer]");
}

TEST_CASE("a model path the filesystem cannot look at is judged like a missing one") {
  // fuzz_job_file: a name longer than the filesystem allows made is_directory throw
  // filesystem_error, which no caller expects of a job file.
  TempDir dir;
  const std::string job = "[[contexts]]\nname = \"a\"\nmodel = \"" + std::string(300, 'm') +
                          "\"\ndataset = \"d\"\ntask = \"noop\"\n";
  CHECK_NOTHROW(read_job_text(job, dir / "job.toml"));
  try {
    read_job_text(job + "format = \"hf\"\n", dir / "job.toml");
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK_THAT(e.what(), Catch::Matchers::ContainsSubstring("needs a model directory"));
  }
}

TEST_CASE("workers hold their next task unless the job's policy table says pipeline = false") {
  TempDir dir;
  write_file(dir / "job.toml", kClassifyJob);
  CHECK(read_job_file(dir / "job.toml").engine.pipeline);
  std::string text = kClassifyJob;
  text.insert(text.find("[policy]\n") + 9, "pipeline = false\n");
  write_file(dir / "job.toml", text);
  CHECK_FALSE(read_job_file(dir / "job.toml").engine.pipeline);
}

TEST_CASE("a job's [transfer] turns bulk encryption off and sets the streams per holder") {
  TempDir dir;
  write_file(dir / "job.toml", kClassifyJob);
  JobFile job = read_job_file(dir / "job.toml");
  CHECK(job.transfer_encryption);
  CHECK(job.transfer_streams == 2);
  write_file(dir / "job.toml",
             std::string(kClassifyJob) + "[transfer]\nencryption = false\nstreams = 4\n");
  job = read_job_file(dir / "job.toml");
  CHECK_FALSE(job.transfer_encryption);
  CHECK(job.transfer_streams == 4);
}

TEST_CASE("a job's text and a dataset's stream read as their files do, named as given") {
  // The fuzz harnesses read inputs this way, without a file each time.
  TempDir dir;
  write_file(dir / "job.toml", kClassifyJob);
  const JobFile from_file = read_job_file(dir / "job.toml");
  const JobFile from_text = read_job_text(kClassifyJob, dir / "job.toml");
  CHECK(from_text.output == from_file.output);
  CHECK(from_text.state_dir == from_file.state_dir);
  REQUIRE(from_text.contexts.size() == 1);
  CHECK(from_text.contexts[0].model == from_file.contexts[0].model);
  CHECK(from_text.contexts[0].inference.labels == from_file.contexts[0].inference.labels);
  CHECK_THROWS_WITH(read_job_text("output = 3\n", dir / "other.toml"),
                    (dir / "other.toml").string() + ":1: output must be a string");
  std::istringstream rows("{\"id\": 1, \"prompt\": \"a\"}\n{\"id\": \"x\"}\n");
  const Dataset d = read_dataset(rows, "rows.jsonl");
  CHECK(d.source == "rows.jsonl");
  REQUIRE(d.rows.size() == 2);
  CHECK(d.rows[1].id_json == "\"x\"");
  std::istringstream bad("{\"id\": 1}\n{\"prompt\": \"b\"}\n");
  CHECK_THROWS_WITH(read_dataset(bad, "rows.jsonl"), "rows.jsonl:2: missing \"id\"");
}

TEST_CASE("a dataset line without an id, or with one seen before, is reported at its line") {
  TempDir dir;
  auto error_of = [&](const std::string& text) {
    return error_reading(dir / "data.jsonl", text, [](const fs::path& p) { read_dataset(p); });
  };
  CHECK(error_of("{\"id\": 1, \"prompt\": \"a\"}\n{\"prompt\": \"b\"}\n") == ":2: missing \"id\"");
  CHECK(error_of("{\"id\": 1}\n\n{\"id\": 1}\n") == ":3: id 1 appears twice");
  write_file(dir / "data.jsonl", "{\"id\": 1}\n{\"id\": \"1\"}\n");
  CHECK_NOTHROW(read_dataset(dir / "data.jsonl"));  // 1 and "1" differ
  CHECK(error_of("{\"id\": 1.5}\n") == ":1: \"id\" must be a string or an integer");
  CHECK(error_of("{\"id\": 1,\n") == ":1: not valid JSON");
  CHECK(error_of("[1]\n") == ":1: not a JSON object");
  CHECK(error_of("{\"id\": 2, \"input_ids\": [1, -4]}\n") ==
        ":1: \"input_ids\" must hold token ids (integers >= 0)");
}

TEST_CASE("a row the template cannot fill is reported before the run starts") {
  TempDir dir;
  write_file(dir / "job.toml", kClassifyJob);
  write_file(dir / "m.pt", "not really a model");
  write_file(dir / "d.jsonl",
             "{\"id\": \"a\", \"claim\": \"x\"}\n{\"id\": \"b\", \"text\": \"y\"}\n");
  CHECK_THROWS_WITH(RunPlan(read_job_file(dir / "job.toml")),
                    Equals((dir / "d.jsonl").string() +
                           ":2: missing string field \"claim\" that the template uses"));
}

TEST_CASE("without a template, inputs are the rows' token ids") {
  DatasetRow row;
  row.input_ids = {5, 6, 300};
  row.has_input_ids = true;
  CHECK(PromptTemplate().tokens(row, "d") == std::vector<std::int32_t>{5, 6, 300});
  row.has_input_ids = false;
  row.line = 4;
  CHECK_THROWS_WITH(PromptTemplate().tokens(row, "d"),
                    Equals("d:4: missing \"input_ids\" (the context has no template)"));
}

TEST_CASE("braces that do not name a field are plain text in a template") {
  DatasetRow row;
  row.fields["x"] = "1";
  auto text = [&](const std::string& t) {
    auto ids = PromptTemplate(t).tokens(row, "d");
    return std::string(ids.begin(), ids.end());
  };
  CHECK(text("{x}") == "1");
  CHECK(text("{ x } {} {x}{x") == "{ x } {} 1{x");
  CHECK(text("") == "");
}

TEST_CASE("a model file is read once for its hash and chunk digests, and not again unchanged") {
  LogLines log;
  TempDir dir;
  const fs::path job = write_noop_job(dir.path, 3, 1);  // context.bin: 100,000 bytes of 'x'
  ContextInfo first;
  {
    RunPlan plan(read_job_file(job));
    first = plan.info(0);
  }
  CHECK(log.count("context.bin: hashed with its chunk digests, 0.000 GB in one read") == 1);
  CHECK(log.count("chunk digests of") == 0);  // no second read for them
  CHECK(first.hash == digest_bytes(std::string(100000, 'x')).hash);
  CHECK(first.chunk_digests == chunk_digests(std::string(100000, 'x'), kDigestChunkBytes));
  {
    // Resumed, the file unchanged: neither its hash nor its digests are read again.
    RunPlan plan(read_job_file(job));
    CHECK(plan.info(0).hash == first.hash);
    CHECK(plan.info(0).chunk_digests == first.chunk_digests);
  }
  CHECK(log.count("hashed with its chunk digests") == 1);
  CHECK(log.count("chunk digests of") == 0);
  // Other bytes of the same size, written later: read again (with the results of the old bytes
  // gone, as a changed model's job refuses them).
  const fs::path model = dir / "context.bin";
  const auto before = fs::last_write_time(model);
  write_file(model, std::string(100000, 'y'));
  fs::last_write_time(model, before + std::chrono::seconds(1));
  fs::remove(dir / "job.state" / "results.db");
  RunPlan plan(read_job_file(job));
  CHECK(log.count("hashed with its chunk digests") == 2);
  CHECK(plan.info(0).hash == digest_bytes(std::string(100000, 'y')).hash);
  CHECK(plan.info(0).chunk_digests == chunk_digests(std::string(100000, 'y'), kDigestChunkBytes));
}
