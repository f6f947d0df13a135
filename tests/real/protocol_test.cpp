// The wire format: what is sent is what arrives, and anything else is refused with a reason.

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include "real_backend/wire/bulk.hpp"
#include "real_backend/wire/protocol.hpp"

using namespace hearth;
using namespace hearth::real;
using Catch::Matchers::Equals;

TEST_CASE("every field of a stage command survives encoding") {
  Stage s;
  s.stage = 1234567890123ULL;
  s.context = 7;
  s.tier = Tier::host;
  s.source = StageSource::peer;
  s.peer_endpoint = "tcp://10.0.0.2:4000";
  s.info = {"fever",
            3400000000ULL,
            "ab12",
            "/shared/m.pt",
            {true,
             TaskKind::generate,
             {"SUPPORTS", "REFUTES"},
             {{83}, {82, 9}},
             32,
             {10, 2},
             {"\n\n"},
             0.5f,
             0.9f,
             8},
            {},
            kDigestChunkBytes,
            std::string(811 * kChunkDigestBytes, 'd')};  // 3.4 GB in 4 MiB chunks
  s.peer_ticket = std::string(kBulkTicketBytes, 't');
  s.peer_key = std::string(kBulkKeyBytes, 'k');
  Message m = decode(encode(s));
  REQUIRE(std::holds_alternative<Stage>(m));
  const Stage& r = std::get<Stage>(m);
  CHECK(r.stage == s.stage);
  CHECK(r.context == 7);
  CHECK(r.tier == Tier::host);
  CHECK(r.source == StageSource::peer);
  CHECK(r.peer_endpoint == s.peer_endpoint);
  CHECK(r.info.name == "fever");
  CHECK(r.info.size_bytes == 3400000000ULL);
  CHECK(r.info.hash == "ab12");
  CHECK(r.info.shared_path == "/shared/m.pt");
  CHECK(r.info.inference.has_model);
  CHECK(r.info.inference.task == TaskKind::generate);
  CHECK(r.info.inference.labels == std::vector<std::string>{"SUPPORTS", "REFUTES"});
  CHECK(r.info.inference.label_tokens == std::vector<std::vector<std::int32_t>>{{83}, {82, 9}});
  CHECK(r.info.inference.max_new_tokens == 32);
  CHECK(r.info.inference.stop_tokens == std::vector<std::int32_t>{10, 2});
  CHECK(r.info.inference.stop_strings == std::vector<std::string>{"\n\n"});
  CHECK(r.info.inference.temperature == 0.5f);
  CHECK(r.info.inference.top_p == 0.9f);
  CHECK(r.info.inference.max_batch == 8);
  CHECK(r.info.chunk_bytes == kDigestChunkBytes);
  CHECK(r.info.chunk_digests == s.info.chunk_digests);
  CHECK(r.peer_ticket == s.peer_ticket);
  CHECK(r.peer_key == s.peer_key);
}

namespace {

std::string hex_hash(char c) {
  return std::string(64, c);
}

// A stage of a directory context of three files: 10 bytes at 0, 0 at 4096, 5000 at 4096.
Stage directory_stage() {
  Stage s;
  s.context = 3;
  s.info.name = "hf";
  s.info.files = {{"config.json", 0, 10, hex_hash('a')},
                  {"empty", 4096, 0, hex_hash('b')},
                  {"weights/model.safetensors", 4096, 5000, hex_hash('c')}};
  s.info.size_bytes = 9096;
  s.info.hash = manifest_hash(s.info.files);
  return s;
}

// Why a stage whose manifest `change` spoils does not decode.
template <class Change>
std::string refusal(Change change) {
  Stage s = directory_stage();
  change(s.info);
  try {
    decode(encode(s));
  } catch (const ProtocolError& e) {
    return e.what();
  }
  return "decoded";
}

}  // namespace

TEST_CASE("a directory context's manifest survives encoding") {
  Stage s = directory_stage();
  Message m = decode(encode(s));
  REQUIRE(std::holds_alternative<Stage>(m));
  CHECK(std::get<Stage>(m).info.files == s.info.files);
  CHECK(std::get<Stage>(m).info.hash == s.info.hash);
}

TEST_CASE("a manifest that is not a pack's layout, or not the context's, does not decode") {
  auto rehash = [](ContextInfo& i) { i.hash = manifest_hash(i.files); };
  CHECK(refusal([&](ContextInfo& i) {
          i.files[2].offset = 4100;
          rehash(i);
        }) == "context hf: weights/model.safetensors at offset 4100, the layout puts it at 4096");
  CHECK(refusal([&](ContextInfo& i) {
          i.files[1].offset = 0;  // overlapping config.json
          rehash(i);
        }) == "context hf: empty at offset 0, the layout puts it at 4096");
  CHECK(refusal([&](ContextInfo& i) {
          std::swap(i.files[0].name, i.files[1].name);
          rehash(i);
        }) == "context hf: config.json is not after empty: names must ascend");
  CHECK(refusal([&](ContextInfo& i) {
          i.files[2].name = "../etc/passwd";
          rehash(i);
        }) == "context hf: file 2: a name with an empty, . or .. part");
  CHECK(refusal([&](ContextInfo& i) {
          i.files[2].name = "/abs";
          rehash(i);
        }) == "context hf: file 2: not a relative path");
  CHECK(refusal([&](ContextInfo& i) {
          i.files[2].name = "weights//x";
          rehash(i);
        }) == "context hf: file 2: a name with an empty, . or .. part");
  CHECK(refusal([&](ContextInfo& i) {
          i.files[0].hash = "abc";
          rehash(i);
        }) == "context hf: config.json has no BLAKE2b-256 hex hash");
  CHECK(refusal([&](ContextInfo& i) {
          i.files[2].size = std::uint64_t{1} << 63;
          rehash(i);
        }) == "context hf: weights/model.safetensors has an absurd size 9223372036854775808");
  CHECK(refusal([](ContextInfo& i) { i.size_bytes = 9097; }) ==
        "context hf: the files end at 9096, the context has 9097 bytes");
  CHECK(refusal([](ContextInfo& i) { i.hash = hex_hash('d'); }) ==
        "context hf: the manifest does not match the context's hash");
  CHECK(refusal([&](ContextInfo& i) {
          i.files.assign(kMaxPackFiles + 1, i.files[0]);
          rehash(i);
        }) == "context hf: 65537 files, more than 65536");
  // A count larger than the bytes behind it is refused before anything is allocated. Behind it:
  // 3 files of a name (4 + 11, 4 + 5, 4 + 25), offset and size (16) and hash (4 + 64), then the
  // chunk size (4), no chunk digests (4), no peer ticket (4) and no key (4): 321 bytes.
  std::string bytes = encode(directory_stage());
  std::size_t count_at = bytes.find(std::string("\x03\0\0\0\x0b\0\0\0config.json", 19));
  REQUIRE(count_at != std::string::npos);
  bytes[count_at + 3] = '\x7f';
  CHECK_THROWS_WITH(decode(bytes), Equals("length 2130706435 exceeds the 321 bytes left"));
}

TEST_CASE("tasks, results and hellos survive encoding") {
  Task t{42, 3, {{1, 2, 3}, {}, {255}}, {7, 1ull << 63, 0}};
  Message mt = decode(encode(t));
  CHECK(std::get<Task>(mt).attempt == 42);
  CHECK(std::get<Task>(mt).context == 3);
  CHECK(std::get<Task>(mt).inputs == t.inputs);
  CHECK(std::get<Task>(mt).seeds == t.seeds);

  TaskFinished f{42, {"{\"label\":\"A\"}", "null"}};
  CHECK(std::get<TaskFinished>(decode(encode(f))).results == f.results);

  Hello h;
  h.name = "gpu-7";
  h.gpu_type = "NVIDIA-H200";
  h.gpu_memory_bytes = 141e9;
  h.speed = 2.5;
  h.peer_endpoint = "tcp://127.0.0.1:5555";
  h.pid = 99;
  Hello r = std::get<Hello>(decode(encode(h)));
  CHECK(r.version == kProtocolVersion);
  CHECK(r.name == "gpu-7");
  CHECK(r.gpu_type == "NVIDIA-H200");
  CHECK(r.gpu_memory_bytes == 141e9);
  CHECK(r.speed == 2.5);
  CHECK(r.peer_endpoint == h.peer_endpoint);
  CHECK(r.pid == 99);
}

TEST_CASE("a message that does not decode exactly is refused, saying why") {
  std::string cancel = encode(Cancel{5});
  CHECK(cancel.size() == 9);  // type byte + u64
  CHECK_THROWS_WITH(decode(""), Equals("message ends early (wanted 1 bytes, 0 left)"));
  CHECK_THROWS_WITH(decode(cancel.substr(0, 5)),
                    Equals("message ends early (wanted 8 bytes, 4 left)"));
  CHECK_THROWS_WITH(decode(cancel + "x"), Equals("1 unexpected trailing bytes"));
  CHECK_THROWS_WITH(decode(std::string(1, char(0))), Equals("unknown message type 0"));
  CHECK_THROWS_WITH(decode(std::string(1, char(200))), Equals("unknown message type 200"));

  std::string evict = encode(Evict{1, Tier::disk});
  evict.back() = 3;  // no fourth tier
  CHECK_THROWS_WITH(decode(evict), Equals("bad enum value 3"));

  // A length that claims more than the message holds is caught before anything is allocated.
  std::string reset = encode(Reset{"ab"});
  reset[1] = '\xff';
  reset[2] = '\xff';
  CHECK_THROWS_WITH(decode(reset), Equals("length 65535 exceeds the 2 bytes left"));
}

TEST_CASE("a protocol error is an input error, which the manager logs and drops") {
  CHECK_THROWS_AS(decode("\x01"), InputError);
}
