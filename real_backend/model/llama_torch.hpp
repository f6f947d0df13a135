#pragma once
// The Llama family (llama_config.hpp) in libtorch: part of the torch plugin, where
// llama_torch.cpp holds the forward pass, the KV cache and batching. No libtorch include here.

#include <memory>
#include <string>

#include "real_backend/model/model_runtime.hpp"

namespace hearth::real {

class FastLoader;
class ModelFiles;

// Builds the model of a Hugging Face directory on `device` ("cpu" or "cuda:N"). On the CPU the
// weights are fp32, views into an fp32 pack where the files are packed in memory, else converted
// copies; on CUDA they keep the checkpoint's dtype and each shard's data region goes to one
// device buffer, through `loader` unless it is null. Fills `report`. Throws InputError for a
// directory that is not a usable model.
std::shared_ptr<LoadedModel> load_llama(const ModelFiles& files, const std::string& device,
                                        FastLoader* loader, LoadReport& report);

}  // namespace hearth::real
