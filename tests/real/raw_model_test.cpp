// Raw model files: the built-in model laid out for one copy to the device, written in parallel,
// read back exactly, and loaded to the same results as its TorchScript twin.

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>
#include <cstring>

#include "policy/errors.hpp"
#include "real_backend/model/builtin_model.hpp"
#include "real_backend/model/model_runtime.hpp"
#include "real_backend/model/raw_model.hpp"
#include "tests/real/helpers.hpp"

using namespace hearth;
using namespace hearth::real;
using namespace hearth::testing;
using Catch::Matchers::ContainsSubstring;

namespace {

BuiltinModelOptions small() {
  return {.dim = 32, .layers = 2, .heads = 4, .context = 24, .ffn = 48, .seed = 3};
}

}  // namespace

TEST_CASE("floats round to the nearest bfloat16, ties to even") {
  CHECK(to_bf16(1.0f) == 0x3f80);
  CHECK(to_bf16(1.0f + 0x1.0p-8f) == 0x3f80);      // halfway, down to even
  CHECK(to_bf16(1.0f + 3 * 0x1.0p-8f) == 0x3f82);  // halfway, up to even
  CHECK(to_bf16(1.0f + 0x1.0p-8f + 0x1.0p-20f) == 0x3f81);
  CHECK(to_bf16(-2.0f) == 0xc000);
  CHECK(to_bf16(-INFINITY) == 0xff80);
  CHECK(to_bf16(NAN) == 0x7fc0);
}

TEST_CASE("the built-in model's plan gives the values make_builtin_model gives") {
  BuiltinModelOptions o = small();
  BuiltinModelPlan plan = plan_builtin_model(o);
  BuiltinModel model = make_builtin_model(o);
  REQUIRE(plan.tensors.size() == model.tensors.size());
  CHECK(plan.source == model.source);
  CHECK(plan.tensors[10].name == "l0_fc_w");
  CHECK(plan.tensors[10].shape == std::vector<std::int64_t>{32, 48});
  // tok, pos, and per block qkv, proj, fc, out weights plus 4 LN and 4 bias vectors; no mask.
  CHECK(plan.parameters() ==
        256 * 32 + 24 * 32 + 2 * (32 * 96 + 32 * 32 + 2 * 32 * 48 + 4 * 32 + 96 + 32 + 48 + 32) +
            2 * 32);
  // The 1.7B configuration of experiments/h200: SmolLM2-1.7B's size and depth.
  BuiltinModelOptions big{.dim = 2048, .layers = 24, .heads = 32, .context = 512, .ffn = 13312};
  CHECK(plan_builtin_model(big).parameters() == 1'713'614'848);
}

TEST_CASE("a raw model file holds the built-in model's values at aligned offsets") {
  TempDir dir;
  BuiltinModelOptions o = small();
  RawWriteStats stats = write_builtin_raw_model(o, DType::f32, dir / "m.raw", 2);
  std::string file = read_file(dir / "m.raw");
  CHECK(stats.file_bytes == file.size());
  RawModelLayout layout = read_raw_model_layout(dir / "m.raw");
  CHECK(layout.data_offset % 4096 == 0);
  CHECK(layout.data_offset + layout.data_bytes == file.size());
  BuiltinModel model = make_builtin_model(o);
  REQUIRE(layout.tensors.size() == model.tensors.size());
  for (std::size_t i = 0; i < model.tensors.size(); ++i) {
    const RawTensor& t = layout.tensors[i];
    CAPTURE(t.name);
    CHECK(t.name == model.tensors[i].name);
    CHECK(t.offset % 256 == 0);
    CHECK(t.buffer == model.tensors[i].buffer);
    std::vector<float> values(model.tensors[i].values.size());
    REQUIRE(t.bytes == values.size() * 4);
    std::memcpy(values.data(), file.data() + layout.data_offset + t.offset, t.bytes);
    CHECK(std::memcmp(values.data(), model.tensors[i].values.data(), t.bytes) == 0);
  }
  CHECK(layout.source == model.source);
}

TEST_CASE("a raw model file is the same whatever the number of threads writing it") {
  TempDir dir;
  BuiltinModelOptions o = small();
  o.dim = 256;  // 3.3 MB in bf16: blocks of 64 KiB, many of them across tensor boundaries
  o.heads = 8;
  o.ffn = 0;
  write_builtin_raw_model(o, DType::bf16, dir / "one.raw", 1);
  write_builtin_raw_model(o, DType::bf16, dir / "three.raw", 3);
  CHECK(read_file(dir / "one.raw") == read_file(dir / "three.raw"));
  RawModelLayout layout = read_raw_model_layout(dir / "one.raw");
  CHECK(layout.tensors[0].dtype == DType::bf16);
  CHECK(layout.tensors[0].bytes == 256 * 256 * 2);
}

TEST_CASE("a damaged raw model file is refused, saying what is wrong") {
  TempDir dir;
  write_builtin_raw_model(small(), DType::f32, dir / "m.raw", 1);
  std::string file = read_file(dir / "m.raw");
  CHECK_THROWS_WITH(parse_raw_model(file.substr(0, 40), 40, "m.raw"),
                    ContainsSubstring("m.raw: the header is cut short"));
  CHECK_THROWS_WITH(parse_raw_model(file, file.size() - 1, "m.raw"),
                    ContainsSubstring("does not fit the file"));
  std::string wrong = file;
  wrong.replace(wrong.find(" f32 "), 5, " f64 ");
  CHECK_THROWS_WITH(parse_raw_model(wrong, wrong.size(), "m.raw"),
                    ContainsSubstring("unknown dtype 'f64'"));
  // f16 weights come in safetensors only: a raw file is neither written nor read with them.
  wrong.replace(wrong.find(" f64 "), 5, " f16 ");
  CHECK_THROWS_WITH(parse_raw_model(wrong, wrong.size(), "m.raw"),
                    ContainsSubstring("m.raw: header line") &&
                        ContainsSubstring("f16 tensors are not supported here"));
  CHECK_THROWS_WITH(write_builtin_raw_model(small(), DType::f16, dir / "f16.raw", 1),
                    "raw model files hold f32 or bf16, not f16");
  CHECK_THROWS_AS(read_raw_model_layout(dir / "missing.raw"), InputError);
  CHECK_FALSE(is_raw_model("PK\x03\x04 a zip"));
}

TEST_CASE("a raw model loads to exactly the results of the same model in TorchScript") {
  TempDir dir;
  BuiltinModelOptions o = small();
  ModelRuntime& rt = torch_runtime();
  rt.save_builtin(make_builtin_model(o), (dir / "m.pt").string());
  write_builtin_raw_model(o, DType::f32, dir / "m.raw", 2);
  auto pt = rt.load(read_file(dir / "m.pt"), "cpu");
  auto raw = rt.load(read_file(dir / "m.raw"), "cpu");
  LoadReport report = rt.last_load();
  CHECK(report.path == "raw-plain");
  CHECK(report.bytes == read_raw_model_layout(dir / "m.raw").data_bytes);
  auto from_file = rt.load_file((dir / "m.raw").string(), "cpu");
  CHECK(rt.last_load().path == "raw-plain");
  CHECK(rt.last_load().read_s > 0);
  for (const std::string& p :
       {std::string("a"), std::string("The river flows north."), std::string(40, 'q')}) {
    CAPTURE(p);
    InferenceResult expected = classify_one(*pt, bytes_of(p), {'S', 'R'});
    CHECK(classify_one(*raw, bytes_of(p), {'S', 'R'}).scores == expected.scores);
    CHECK(classify_one(*from_file, bytes_of(p), {'S', 'R'}).scores == expected.scores);
    CHECK(generate_one(*raw, bytes_of(p), 4, -1).tokens ==
          generate_one(*pt, bytes_of(p), 4, -1).tokens);
  }
}

TEST_CASE("a bf16 raw model and its TorchScript twin give the same results") {
  TempDir dir;
  ModelRuntime& rt = torch_runtime();
  write_builtin_raw_model(small(), DType::bf16, dir / "m.raw", 2);
  rt.save_torchscript((dir / "m.raw").string(), (dir / "m.pt").string());
  auto raw = rt.load(read_file(dir / "m.raw"), "cpu");
  auto pt = rt.load(read_file(dir / "m.pt"), "cpu");
  CHECK(rt.last_load().path == "torchscript");
  InferenceResult r = classify_one(*raw, bytes_of("Claim: bf16 is enough"), {'S', 'R', 'N'});
  CHECK(r.scores == classify_one(*pt, bytes_of("Claim: bf16 is enough"), {'S', 'R', 'N'}).scores);
  for (float s : r.scores)
    CHECK(std::isfinite(s));
}

TEST_CASE("a task's inputs in one call score exactly as each input alone, errors apart") {
  TempDir dir;
  ModelRuntime& rt = torch_runtime();
  write_builtin_raw_model(small(), DType::f32, dir / "m.raw", 1);
  auto model = rt.load(read_file(dir / "m.raw"), "cpu");
  std::vector<std::vector<std::int32_t>> inputs = {
      bytes_of("first claim"), {}, bytes_of("a longer claim")};
  std::vector<InferenceResult> together = model->classify(inputs, {{'a'}, {'b'}, {'c'}});
  REQUIRE(together.size() == 3);
  CHECK_THAT(together[1].error, ContainsSubstring("empty input"));
  CHECK(together[1].scores.empty());
  for (std::size_t i : {0, 2}) {
    InferenceResult alone = classify_one(*model, inputs[i], {'a', 'b', 'c'});
    CHECK(together[i].error.empty());
    CHECK(together[i].scores == alone.scores);
    CHECK(together[i].label == alone.label);
  }
}

TEST_CASE("a label of several tokens scores the sum of its tokens' log-probabilities") {
  TempDir dir;
  ModelRuntime& rt = torch_runtime();
  write_builtin_raw_model(small(), DType::f32, dir / "m.raw", 1);
  auto model = rt.load(read_file(dir / "m.raw"), "cpu");
  std::vector<std::int32_t> x = bytes_of("Verdict:");
  std::vector<std::int32_t> x_s = bytes_of("Verdict: S");
  // log p(" " | x) + log p("S" | x " ") + log p("!" | x " S"), each from a one-token label.
  double expected = classify_one(*model, x, {' '}).scores[0] +
                    classify_one(*model, bytes_of("Verdict: "), {'S'}).scores[0] +
                    classify_one(*model, x_s, {'!'}).scores[0];
  InferenceResult r = model->classify({x}, {{' ', 'S', '!'}, {'q'}}).at(0);
  REQUIRE(r.scores.size() == 2);
  CHECK(std::abs(r.scores[0] - expected) < 1e-5);
  CHECK(r.scores[0] < 0);
  CHECK(r.label == (r.scores[1] > r.scores[0] ? 1 : 0));
}
