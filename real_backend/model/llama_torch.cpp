// The Llama family's forward pass in libtorch, as Hugging Face's LlamaForCausalLM and its
// Mistral, Qwen2 and Qwen3 siblings compute it: RMSNorm in fp32 then cast back, rotate_half rope
// (with Llama 3's frequency scaling), grouped-query attention with the softmax in fp32, a
// SiLU-gated MLP. Inputs run in batches of similar length, left-padded, each row with its own
// positions and a mask, against a KV cache: classify prefills each input once and scores every
// label from the cached prefix; generate decodes one token per step for the whole batch.

#include "real_backend/model/llama_torch.hpp"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>

#include "os/clock.hpp"
#include "policy/errors.hpp"
#include "real_backend/model/fast_loader.hpp"
#include "real_backend/model/inference.hpp"
#include "real_backend/model/model_files.hpp"
#include "real_backend/model/torch_dtype.hpp"

namespace hearth::real {

namespace {

using Clock = std::chrono::steady_clock;

using os::seconds_since;

struct Layer {
  at::Tensor input_norm, q, q_bias, k, k_bias, v, v_bias, o, o_bias, q_norm, k_norm;
  at::Tensor post_norm, gate, up, down;
};

struct Weights {
  at::Tensor embed, norm, lm_head;
  std::vector<Layer> layers;
};

// Each layer's keys and values for the rows of a batch: [rows, kv_heads, capacity, head_dim].
struct KvCache {
  std::vector<at::Tensor> k, v;
  void keep_rows(const at::Tensor& rows) {
    for (auto* side : {&k, &v}) {
      for (at::Tensor& t : *side)
        t = t.index_select(0, rows);
    }
  }
};

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  at::Tensor h = x.to(at::kFloat);
  h = h * at::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * h.to(x.scalar_type());
}

at::Tensor rotate_half(const at::Tensor& x) {
  std::int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// The rope frequencies of HF's default and "llama3" rope types, computed in double and rounded
// once to fp32.
at::Tensor inverse_frequencies(const LlamaConfig& c) {
  std::vector<float> out;
  for (std::int64_t i = 0; i < c.head_dim; i += 2) {
    double f = 1.0 / std::pow(c.rope_theta, static_cast<double>(i) / c.head_dim);
    const RopeScaling& s = c.rope_scaling;
    if (s.llama3) {
      double old_context = static_cast<double>(s.original_max_position_embeddings);
      double low_wavelen = old_context / s.low_freq_factor;
      double high_wavelen = old_context / s.high_freq_factor;
      double wavelen = 2 * M_PI / f;
      if (wavelen > low_wavelen) {
        f = f / s.factor;
      } else if (!(wavelen < high_wavelen)) {  // between the bands: a blend
        double smooth =
            (old_context / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1 - smooth) * f / s.factor + smooth * f;
      }
    }
    out.push_back(static_cast<float>(f));
  }
  return at::tensor(out, at::kFloat);
}

// Free memory now: MemAvailable on the CPU, the GPU's free memory from the fast loader.
std::uint64_t free_bytes(const c10::Device& device, FastLoader* loader) {
  if (device.is_cuda()) return loader ? loader->memory().free_bytes : 4ull << 30;
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib << 10;
  }
  return 4ull << 30;
}

// Rows of a batch and the tensors that place them: left-padded to the longest input, each row with
// its own positions; a key slot's position is -1 where it is padding.
struct Batch {
  std::vector<std::size_t> inputs;  // indices into the call's inputs, row order
  std::vector<std::int64_t> lengths;
  std::int64_t width = 0;  // the longest input
  at::Tensor ids, positions, key_positions;
};

class LlamaModel final : public LoadedModel {
 public:
  LlamaModel(LlamaConfig config, Weights weights, c10::Device device, FastLoader* loader,
             std::shared_ptr<const std::string> pack)
      : config_(std::move(config)),
        w_(std::move(weights)),
        device_(device),
        dtype_(w_.embed.scalar_type()),
        inv_freq_(inverse_frequencies(config_).to(device)),
        loader_(loader),
        pack_(std::move(pack)) {}

  std::vector<InferenceResult> classify(const std::vector<std::vector<std::int32_t>>& inputs,
                                        const std::vector<std::vector<std::int32_t>>& labels,
                                        const CancelCheck& cancelled) override {
    c10::InferenceMode guard;
    check_labels(labels);
    std::size_t longest_label = 0;
    for (const auto& label : labels) {
      longest_label = std::max(longest_label, label.size());
      for (std::int32_t t : label) {
        if (t < 0 || t >= config_.vocab_size) {
          throw std::invalid_argument(
              fmt::format("label token {} is outside the vocabulary of {}", t, config_.vocab_size));
        }
      }
    }
    auto extra = static_cast<std::int64_t>(longest_label) - 1;
    std::vector<InferenceResult> out(inputs.size());
    for (auto& rows : plan(inputs, extra, extra, longest_label, out)) {
      if (cancelled && cancelled()) throw Cancelled();
      Batch b = make_batch(inputs, rows);
      classify_batch(b, labels, extra, out);
    }
    return out;
  }

  std::vector<InferenceResult> generate(const std::vector<std::vector<std::int32_t>>& inputs,
                                        const GenerateOptions& options, const StopCheck& stop,
                                        const CancelCheck& cancelled) override {
    c10::InferenceMode guard;
    check_generate_options(options, inputs.size());
    std::vector<InferenceResult> out(inputs.size());
    // Only one new token must fit: generation ends at the context's end.
    auto batches = plan(inputs, 1, options.max_new_tokens, 1, out);
    if (options.max_new_tokens == 0) return out;
    for (auto& rows : batches) {
      if (cancelled && cancelled()) throw Cancelled();
      Batch b = make_batch(inputs, rows);
      generate_batch(b, options, stop, cancelled, out);
    }
    return out;
  }

  void set_max_batch(std::size_t inputs) override { max_batch_ = inputs; }

 private:
  // The inputs that can run with `extra` tokens after them, sorted by length and cut into batches
  // whose estimated memory fits with up to `slots` more cache slots per row, and whose padding is
  // at most as much as their tokens; the others get their error in `out` now.
  std::vector<std::vector<std::size_t>> plan(const std::vector<std::vector<std::int32_t>>& inputs,
                                             std::int64_t extra, std::int64_t slots,
                                             std::size_t logit_rows,
                                             std::vector<InferenceResult>& out) {
    std::vector<std::size_t> order;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      out[i].error =
          input_error(inputs[i], config_.vocab_size, config_.max_position_embeddings, extra);
      if (out[i].error.empty()) order.push_back(i);
    }
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return inputs[a].size() < inputs[b].size();
    });
    std::uint64_t budget = free_bytes(device_, loader_) / 2 + last_batch_bytes_;
    std::vector<std::vector<std::size_t>> batches;
    std::int64_t tokens = 0;  // in the last batch
    for (std::size_t i : order) {
      // Sorted by length: the newest row is the longest, and sets every row's width.
      auto length = static_cast<std::int64_t>(inputs[i].size());
      std::int64_t capacity = std::min(length + slots, config_.max_position_embeddings);
      std::uint64_t row_bytes =
          bytes_per_row(length, capacity, static_cast<std::int64_t>(logit_rows));
      const auto rows = static_cast<std::int64_t>(batches.empty() ? 0 : batches.back().size());
      bool fits = rows > 0 && (max_batch_ == 0 || batches.back().size() < max_batch_) &&
                  static_cast<std::uint64_t>(rows + 1) * row_bytes <= budget &&
                  (rows + 1) * length <= 2 * (tokens + length);
      if (!fits) {
        batches.emplace_back();
        tokens = 0;
      }
      batches.back().push_back(i);
      tokens += length;
      last_batch_bytes_ = std::max(last_batch_bytes_, batches.back().size() * row_bytes);
    }
    return batches;
  }

  // What a row of a batch costs on the device: its KV cache at `capacity` slots, the activations
  // of a prefill of `length` tokens (attention scores in fp32 included), and `logit_rows` rows of
  // fp32 logits with their log-softmax.
  std::uint64_t bytes_per_row(std::int64_t length, std::int64_t capacity,
                              std::int64_t logit_rows) const {
    const LlamaConfig& c = config_;
    auto elem = static_cast<std::uint64_t>(c10::elementSize(dtype_));
    std::uint64_t kv = 2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim * capacity;
    std::uint64_t activations =
        length * (6 * c.hidden_size + 3 * c.intermediate_size +
                  (c.num_attention_heads + 2 * c.num_key_value_heads) * c.head_dim);
    std::uint64_t scores = 3ull * c.num_attention_heads * length * capacity * 4;
    std::uint64_t logits = 3ull * logit_rows * c.vocab_size * 4;
    return (kv + activations) * elem + scores + logits;
  }

  Batch make_batch(const std::vector<std::vector<std::int32_t>>& inputs,
                   const std::vector<std::size_t>& rows) const {
    Batch b;
    b.inputs = rows;
    for (std::size_t i : rows)
      b.lengths.push_back(static_cast<std::int64_t>(inputs[i].size()));
    b.width = *std::max_element(b.lengths.begin(), b.lengths.end());
    auto n = static_cast<std::int64_t>(rows.size());
    std::vector<std::int64_t> ids(n * b.width, 0), positions(n * b.width, 0), keys(n * b.width, -1);
    for (std::int64_t r = 0; r < n; ++r) {
      const auto& input = inputs[rows[r]];
      std::int64_t pad = b.width - b.lengths[r];
      for (std::int64_t t = 0; t < b.lengths[r]; ++t) {
        ids[r * b.width + pad + t] = input[t];
        positions[r * b.width + pad + t] = t;
        keys[r * b.width + pad + t] = t;
      }
    }
    b.ids = long_tensor(ids, n, b.width);
    b.positions = long_tensor(positions, n, b.width);
    b.key_positions = long_tensor(keys, n, b.width);
    return b;
  }

  at::Tensor long_tensor(const std::vector<std::int64_t>& values, std::int64_t rows,
                         std::int64_t cols) const {
    return at::tensor(values, at::kLong).view({rows, cols}).to(device_);
  }

  KvCache empty_cache(std::int64_t rows, std::int64_t capacity) const {
    KvCache cache;
    auto options = at::TensorOptions().dtype(dtype_).device(device_);
    for (std::int64_t l = 0; l < config_.num_hidden_layers; ++l) {
      cache.k.push_back(
          at::zeros({rows, config_.num_key_value_heads, capacity, config_.head_dim}, options));
      cache.v.push_back(at::zeros_like(cache.k.back()));
    }
    return cache;
  }

  // Log-probabilities (fp32, on the CPU) of the next token after each of `hidden`'s positions.
  at::Tensor log_probs(const at::Tensor& hidden) const {
    return at::log_softmax(at::linear(hidden, w_.lm_head).to(at::kFloat), -1).cpu().contiguous();
  }

  // The tokens `ids` [B, T] at positions `positions` [B, T], written to cache slots [start,
  // start + T); `key_positions` [B, start + T] holds every slot's position (-1: padding). Returns
  // the final normed hidden states [B, T, hidden].
  at::Tensor forward(const at::Tensor& ids, const at::Tensor& positions, KvCache& cache,
                     std::int64_t start, const at::Tensor& key_positions) const {
    const LlamaConfig& c = config_;
    const std::int64_t B = ids.size(0), T = ids.size(1), L = start + T;
    const std::int64_t H = c.num_attention_heads, KV = c.num_key_value_heads, D = c.head_dim;
    const std::int64_t G = H / KV;
    // A query sees the slots at its position or before (not padding), within the sliding window.
    at::Tensor q_pos = positions.unsqueeze(-1);     // [B, T, 1]
    at::Tensor k_pos = key_positions.unsqueeze(1);  // [B, 1, L]
    at::Tensor allowed = (k_pos >= 0) & (k_pos <= q_pos);
    if (c.sliding_window) allowed = allowed & (q_pos - k_pos < *c.sliding_window);
    at::Tensor hidden_mask = allowed.logical_not().view({B, 1, 1, T, L});
    const double lowest = std::numeric_limits<float>::lowest();

    at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * inv_freq_;  // [B, T, D/2]
    at::Tensor angles = at::cat({freqs, freqs}, -1).unsqueeze(1);           // [B, 1, T, D]
    at::Tensor cos = angles.cos().to(dtype_), sin = angles.sin().to(dtype_);
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));

    at::Tensor x = w_.embed.index_select(0, ids.reshape({-1})).view({B, T, c.hidden_size});
    for (std::size_t l = 0; l < w_.layers.size(); ++l) {
      const Layer& w = w_.layers[l];
      at::Tensor h = rms_norm(x, w.input_norm, c.rms_norm_eps);
      at::Tensor q = at::linear(h, w.q, w.q_bias).view({B, T, H, D});
      at::Tensor k = at::linear(h, w.k, w.k_bias).view({B, T, KV, D});
      at::Tensor v = at::linear(h, w.v, w.v_bias).view({B, T, KV, D});
      if (c.qk_norm) {
        q = rms_norm(q, w.q_norm, c.rms_norm_eps);
        k = rms_norm(k, w.k_norm, c.rms_norm_eps);
      }
      q = q.transpose(1, 2);  // [B, H, T, D]
      k = k.transpose(1, 2);
      q = q * cos + rotate_half(q) * sin;
      k = k * cos + rotate_half(k) * sin;
      cache.k[l].narrow(2, start, T).copy_(k);
      cache.v[l].narrow(2, start, T).copy_(v.transpose(1, 2));
      at::Tensor keys = cache.k[l].narrow(2, 0, L);  // [B, KV, L, D]
      at::Tensor values = cache.v[l].narrow(2, 0, L);
      // Grouped-query attention without repeating the cache: the G query heads of a KV head
      // are one [G * T, D] block against its keys.
      at::Tensor scores =
          at::matmul(q.reshape({B, KV, G * T, D}), keys.transpose(2, 3)).mul_(scale);
      // Masked in fp32, where the lowest float exists (f16 would make it -inf, and a padding
      // row of -inf only would give NaNs that reach real rows through 0 * NaN).
      scores = scores.view({B, KV, G, T, L}).to(at::kFloat).masked_fill(hidden_mask, lowest);
      at::Tensor probs = at::softmax(scores, -1).to(dtype_).view({B, KV, G * T, L});
      at::Tensor attended =
          at::matmul(probs, values).view({B, H, T, D}).transpose(1, 2).reshape({B, T, H * D});
      x = x + at::linear(attended, w.o, w.o_bias);
      h = rms_norm(x, w.post_norm, c.rms_norm_eps);
      x = x + at::linear(at::silu(at::linear(h, w.gate)) * at::linear(h, w.up), w.down);
    }
    return rms_norm(x, w_.norm, c.rms_norm_eps);
  }

  void classify_batch(const Batch& b, const std::vector<std::vector<std::int32_t>>& labels,
                      std::int64_t extra, std::vector<InferenceResult>& out) const {
    const auto rows = static_cast<std::int64_t>(b.inputs.size());
    KvCache cache = empty_cache(rows, b.width + extra);
    at::Tensor hidden = forward(b.ids, b.positions, cache, 0, b.key_positions);
    at::Tensor first = log_probs(hidden.select(1, b.width - 1));  // [B, V]
    auto first_of = first.accessor<float, 2>();
    std::vector<std::vector<double>> scores(rows, std::vector<double>(labels.size()));
    for (std::size_t l = 0; l < labels.size(); ++l) {
      const auto& label = labels[l];
      for (std::int64_t r = 0; r < rows; ++r)
        scores[r][l] = first_of[r][label[0]];
      if (label.size() == 1) continue;
      // The label's tokens but its last, after each input, in the cache's scratch slots past the
      // prefix (the next label overwrites them): each predicts the label's next token.
      auto m = static_cast<std::int64_t>(label.size()) - 1;
      std::vector<std::int64_t> ids, positions;
      for (std::int64_t r = 0; r < rows; ++r) {
        for (std::int64_t k = 0; k < m; ++k) {
          ids.push_back(label[k]);
          positions.push_back(b.lengths[r] + k);
        }
      }
      at::Tensor pos = long_tensor(positions, rows, m);
      at::Tensor lp = log_probs(forward(long_tensor(ids, rows, m), pos, cache, b.width,
                                        at::cat({b.key_positions, pos}, 1)));  // [B, m, V]
      auto acc = lp.accessor<float, 3>();
      for (std::int64_t r = 0; r < rows; ++r) {
        for (std::int64_t k = 0; k < m; ++k)
          scores[r][l] += acc[r][k][label[k + 1]];
      }
    }
    for (std::int64_t r = 0; r < rows; ++r) {
      InferenceResult& result = out[b.inputs[r]];
      result.scores.assign(scores[r].begin(), scores[r].end());
      result.label = best_label(result.scores);
    }
  }

  void generate_batch(const Batch& b, const GenerateOptions& options, const StopCheck& stop,
                      const CancelCheck& cancelled, std::vector<InferenceResult>& out) const {
    auto rows = static_cast<std::int64_t>(b.inputs.size());
    std::vector<std::size_t> input_of = b.inputs;  // a row's input: rows leave as they finish
    std::vector<std::int64_t> length = b.lengths;  // a row's tokens so far, new ones included
    std::vector<std::int64_t> limit;               // a row's most tokens
    std::int64_t steps = 0;
    for (std::int64_t r = 0; r < rows; ++r) {
      limit.push_back(std::min<std::int64_t>(length[r] + options.max_new_tokens,
                                             config_.max_position_embeddings));
      steps = std::max(steps, limit.back() - length[r]);
    }
    std::vector<TokenSampler> samplers;
    for (std::size_t i : input_of)
      samplers.emplace_back(options.seeds.empty() ? 0 : options.seeds[i]);

    KvCache cache = empty_cache(rows, b.width + steps);
    at::Tensor key_positions = b.key_positions;
    at::Tensor hidden = forward(b.ids, b.positions, cache, 0, key_positions);
    at::Tensor logits = last_logits(hidden);
    for (std::int64_t step = 0;; ++step) {
      std::vector<std::int64_t> keep, next, positions;
      for (std::int64_t r = 0; r < static_cast<std::int64_t>(input_of.size()); ++r) {
        std::size_t i = input_of[r];
        std::int32_t token = samplers[r].next(logits[r].data_ptr<float>(),
                                              static_cast<std::size_t>(config_.vocab_size),
                                              options.temperature, options.top_p);
        out[i].tokens.push_back(token);
        ++length[r];
        bool done = is_stop_token(options, token) || length[r] >= limit[r] ||
                    (stop && stop(i, out[i].tokens));
        if (done) continue;
        keep.push_back(r);
        next.push_back(token);
        positions.push_back(length[r] - 1);
      }
      if (keep.empty()) return;
      if (cancelled && cancelled()) throw Cancelled();
      auto alive = static_cast<std::int64_t>(keep.size());
      if (alive < static_cast<std::int64_t>(input_of.size())) {
        // Finished rows leave the batch, so that no step computes for them.
        at::Tensor rows_kept = long_tensor(keep, 1, alive).view({alive});
        cache.keep_rows(rows_kept);
        key_positions = key_positions.index_select(0, rows_kept);
        std::vector<std::size_t> inputs_kept;
        std::vector<std::int64_t> lengths_kept, limits_kept;
        std::vector<TokenSampler> samplers_kept;
        for (std::int64_t r : keep) {
          inputs_kept.push_back(input_of[r]);
          lengths_kept.push_back(length[r]);
          limits_kept.push_back(limit[r]);
          samplers_kept.push_back(samplers[r]);
        }
        input_of = std::move(inputs_kept);
        length = std::move(lengths_kept);
        limit = std::move(limits_kept);
        samplers = std::move(samplers_kept);
      }
      at::Tensor pos = long_tensor(positions, alive, 1);
      std::int64_t slot = b.width + step;
      key_positions = at::cat({key_positions, pos}, 1);
      hidden = forward(long_tensor(next, alive, 1), pos, cache, slot, key_positions);
      logits = last_logits(hidden);
    }
  }

  // fp32 logits at the last position of each row, on the CPU: [B, V].
  at::Tensor last_logits(const at::Tensor& hidden) const {
    return at::linear(hidden.select(1, hidden.size(1) - 1), w_.lm_head)
        .to(at::kFloat)
        .cpu()
        .contiguous();
  }

  LlamaConfig config_;
  Weights w_;
  c10::Device device_;
  at::ScalarType dtype_;
  at::Tensor inv_freq_;
  FastLoader* loader_;
  std::shared_ptr<const std::string> pack_;  // the weights may be views into it
  std::size_t max_batch_ = 0;
  // The largest batch estimated so far: memory the device's allocator likely holds for reuse,
  // which the free memory does not show.
  std::uint64_t last_batch_bytes_ = 0;
};

// Reads bytes [offset, offset + length) of a file into `out`. Throws InputError.
void read_into(const std::filesystem::path& path, std::uint64_t offset, std::uint64_t length,
               void* out) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(static_cast<char*>(out), static_cast<std::streamsize>(length));
  if (!in) throw InputError(path.string() + ": cannot read its weights");
}

// Each weight file's data region, as bytes: on the CPU a view into the pack or a copy read from
// disk; on CUDA one device buffer per file.
std::vector<at::Tensor> data_regions(const ModelFiles& files, const ModelDirectory& dir,
                                     c10::Device device, FastLoader* loader, LoadReport& report) {
  std::shared_ptr<const std::string> pack = files.pack();
  std::vector<at::Tensor> regions;
  report.path = device.is_cpu() ? (pack ? "hf-view" : "hf-plain") : "hf-plain";
  if (device.is_cuda() && loader) report.path = pack ? "hf-fast" : "hf-fast-file";
  for (const WeightFile& w : dir.weights) {
    FileSlice slice = files.slice(w.name);
    const std::uint64_t begin = slice.offset + w.header.data_offset;
    const auto n = static_cast<std::int64_t>(w.header.data_bytes);
    report.bytes += w.header.data_bytes;
    at::Tensor host;
    if (pack) {
      host = at::from_blob(const_cast<char*>(pack->data() + begin), {n}, at::kByte);
    } else if (!(device.is_cuda() && loader)) {
      host = at::empty({n}, at::kByte);
      read_into(files.path(w.name), w.header.data_offset, w.header.data_bytes, host.data_ptr());
    }
    if (device.is_cpu()) {
      regions.push_back(host);
      continue;
    }
    at::Tensor blob = at::empty({n}, at::TensorOptions().dtype(at::kByte).device(device));
    if (loader) {
      // The loader copies on streams of its own: nothing queued on libtorch's may still use the
      // memory the new buffer reuses.
      torch::cuda::synchronize(device.index());
      if (pack) {
        loader->host_to_device(host.data_ptr(), w.header.data_bytes, blob.data_ptr());
      } else {
        loader->file_to_device(files.path(w.name), w.header.data_offset, w.header.data_bytes,
                               blob.data_ptr());
      }
    } else {
      blob.copy_(host);
    }
    regions.push_back(blob);
  }
  return regions;
}

// The weights as views into the regions, each in `dtype` (no copy where it already is, and the
// bytes are aligned for it).
Weights weights_of(const ModelDirectory& dir, const std::vector<at::Tensor>& regions,
                   at::ScalarType dtype, bool& copied, bool& viewed) {
  auto tensor = [&](const std::string& name) -> at::Tensor {
    auto it = dir.tensors.find(name);
    if (it == dir.tensors.end()) return {};
    const auto& [file, t] = it->second;
    at::ScalarType type = torch_dtype(t->dtype);
    auto size = static_cast<std::int64_t>(c10::elementSize(type));
    at::Tensor bytes = regions[file].narrow(0, static_cast<std::int64_t>(t->begin),
                                            static_cast<std::int64_t>(t->end - t->begin));
    auto address = reinterpret_cast<std::uintptr_t>(bytes.data_ptr());
    if (address % static_cast<std::uintptr_t>(size) != 0 || bytes.storage_offset() % size != 0) {
      bytes = bytes.clone();
      copied = true;
    }
    at::Tensor value = bytes.view(type).view(t->shape);
    if (dtype != type) {
      value = value.to(dtype);
      copied = true;
    }
    viewed = viewed || value.is_alias_of(regions[file]);
    return value;
  };
  Weights w;
  w.embed = tensor("model.embed_tokens.weight");
  w.norm = tensor("model.norm.weight");
  w.lm_head = dir.config.tie_word_embeddings ? w.embed : tensor("lm_head.weight");
  for (std::int64_t l = 0; l < dir.config.num_hidden_layers; ++l) {
    std::string p = fmt::format("model.layers.{}.", l);
    Layer layer;
    layer.input_norm = tensor(p + "input_layernorm.weight");
    layer.q = tensor(p + "self_attn.q_proj.weight");
    layer.k = tensor(p + "self_attn.k_proj.weight");
    layer.v = tensor(p + "self_attn.v_proj.weight");
    layer.o = tensor(p + "self_attn.o_proj.weight");
    layer.q_bias = tensor(p + "self_attn.q_proj.bias");
    layer.k_bias = tensor(p + "self_attn.k_proj.bias");
    layer.v_bias = tensor(p + "self_attn.v_proj.bias");
    layer.o_bias = tensor(p + "self_attn.o_proj.bias");
    layer.q_norm = tensor(p + "self_attn.q_norm.weight");
    layer.k_norm = tensor(p + "self_attn.k_norm.weight");
    layer.post_norm = tensor(p + "post_attention_layernorm.weight");
    layer.gate = tensor(p + "mlp.gate_proj.weight");
    layer.up = tensor(p + "mlp.up_proj.weight");
    layer.down = tensor(p + "mlp.down_proj.weight");
    w.layers.push_back(std::move(layer));
  }
  return w;
}

}  // namespace

std::shared_ptr<LoadedModel> load_llama(const ModelFiles& files, const std::string& device,
                                        FastLoader* loader, LoadReport& report) {
  c10::Device d(device);
  ModelDirectory dir = open_model_directory(files);
  auto start = Clock::now();
  std::vector<at::Tensor> regions = data_regions(files, dir, d, loader, report);
  if (d.is_cuda()) torch::cuda::synchronize(d.index());
  report.copy_s = seconds_since(start);
  start = Clock::now();
  bool copied = false, viewed = false;
  // The CPU computes in fp32; CUDA in the checkpoint's dtype (the embedding's, where tensors mix).
  at::ScalarType dtype =
      d.is_cpu() ? at::kFloat
                 : torch_dtype(dir.tensors.at("model.embed_tokens.weight").second->dtype);
  Weights weights = weights_of(dir, regions, dtype, copied, viewed);
  if (copied && report.path == "hf-view") report.path = "hf-plain";
  // Views into a pack on the CPU keep the pack alive.
  std::shared_ptr<const std::string> pack = d.is_cpu() && viewed ? files.pack() : nullptr;
  auto model = std::make_shared<LlamaModel>(dir.config, std::move(weights), d, loader, pack);
  report.build_s = seconds_since(start);
  return model;
}

}  // namespace hearth::real
