// Models: the built-in transformer is a TorchScript file like any other; inference is exact and
// repeatable, so that runs with and without faults give the same outputs.

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include "policy/errors.hpp"
#include "real_backend/model/builtin_model.hpp"
#include "real_backend/model/model_runtime.hpp"
#include "tests/real/helpers.hpp"

using namespace hearth;
using namespace hearth::real;
using namespace hearth::testing;
using Catch::Matchers::ContainsSubstring;

namespace {

std::shared_ptr<LoadedModel> load_builtin(const TempDir& dir, BuiltinModelOptions options = {}) {
  ModelRuntime& rt = torch_runtime();
  rt.save_builtin(make_builtin_model(options), (dir / "m.pt").string());
  return rt.load(read_file(dir / "m.pt"), "cpu");
}

}  // namespace

TEST_CASE("the built-in model's weights depend on the seed alone") {
  BuiltinModelOptions o;
  BuiltinModel a = make_builtin_model(o), b = make_builtin_model(o);
  o.seed = 2;
  BuiltinModel c = make_builtin_model(o);
  REQUIRE(a.tensors.size() == 2 + 12 * 2 + 2 + 1);
  CHECK(a.tensors[0].name == "tok");
  CHECK(a.tensors[0].shape == std::vector<std::int64_t>{256, 64});
  CHECK(a.tensors[0].values == b.tensors[0].values);
  CHECK(a.tensors[0].values != c.tensors[0].values);
  CHECK(a.source == c.source);
}

TEST_CASE("a built-in model that cannot be made is refused") {
  BuiltinModelOptions o;
  o.heads = 5;
  CHECK_THROWS_AS(make_builtin_model(o), InputError);
}

TEST_CASE("classification picks the label whose token is likeliest after the input") {
  TempDir dir;
  auto model = load_builtin(dir);
  std::vector<std::int32_t> prompt = bytes_of("Claim: the tower is in Paris\nVerdict:");
  InferenceResult all = classify_one(*model, prompt, {'S', 'R', 'N'});
  REQUIRE(all.scores.size() == 3);
  int best = 0;
  for (int i = 1; i < 3; ++i) {
    if (all.scores[i] > all.scores[best]) best = i;
  }
  CHECK(all.label == best);
  // The scores of a label do not depend on which other labels are asked about.
  InferenceResult two = classify_one(*model, prompt, {'N', 'S'});
  CHECK(two.scores[0] == all.scores[2]);
  CHECK(two.scores[1] == all.scores[0]);
}

TEST_CASE("the same model file gives bit-identical results in every load") {
  TempDir dir;
  auto first = load_builtin(dir);
  auto second = torch_runtime().load(read_file(dir / "m.pt"), "cpu");
  for (const std::string& p :
       std::vector<std::string>{"a", "The river flows north.", std::string(300, 'z')}) {
    CAPTURE(p);
    CHECK(classify_one(*first, bytes_of(p), {'a', 'b'}).scores ==
          classify_one(*second, bytes_of(p), {'a', 'b'}).scores);
    CHECK(generate_one(*first, bytes_of(p), 5, -1).tokens ==
          generate_one(*second, bytes_of(p), 5, -1).tokens);
  }
}

TEST_CASE("greedy generation makes up to N tokens and stops after the stop token") {
  TempDir dir;
  auto model = load_builtin(dir);
  InferenceResult r = generate_one(*model, bytes_of("Once upon a time"), 8, -1);
  REQUIRE(r.tokens.size() == 8);
  // Stopping at the third token: exactly the first three of the same greedy run.
  InferenceResult stopped = generate_one(*model, bytes_of("Once upon a time"), 8, r.tokens[2]);
  auto first_stop = std::find(r.tokens.begin(), r.tokens.end(), r.tokens[2]) - r.tokens.begin();
  CHECK(stopped.tokens ==
        std::vector<std::int32_t>(r.tokens.begin(), r.tokens.begin() + first_stop + 1));
}

TEST_CASE("inputs longer than the model's context keep their last tokens") {
  TempDir dir;
  BuiltinModelOptions o;
  o.context = 16;
  auto model = load_builtin(dir, o);
  std::string tail = "exactly sixteen!";
  CHECK(classify_one(*model, bytes_of("a long preamble that is cut off; " + tail), {'x'}).scores ==
        classify_one(*model, bytes_of(tail), {'x'}).scores);
}

TEST_CASE("a file that is not TorchScript, or an empty input, is an error") {
  ModelRuntime& rt = torch_runtime();
  CHECK_THROWS_WITH(rt.load("not a zip archive", "cpu"),
                    ContainsSubstring("not a loadable TorchScript model"));
  TempDir dir;
  auto model = load_builtin(dir);
  std::vector<InferenceResult> r = model->classify({{}, bytes_of("fine")}, {{'a'}});
  CHECK_THAT(r.at(0).error, ContainsSubstring("empty input"));
  CHECK(r.at(1).error.empty());
  CHECK(r.at(1).scores.size() == 1);
}

TEST_CASE("a CPU-only libtorch resolves auto to the CPU and refuses CUDA") {
  ModelRuntime& rt = torch_runtime();
  CHECK(rt.resolve_device("cpu") == "cpu");
  if (rt.resolve_device("auto") == "cpu") {
    CHECK_THROWS_WITH(rt.resolve_device("cuda:0"), ContainsSubstring("sees no CUDA GPU"));
  } else {
    CHECK(rt.resolve_device("auto") == "cuda:0");
  }
  CHECK_THROWS_WITH(rt.resolve_device("tpu"), ContainsSubstring("device must be"));
}
