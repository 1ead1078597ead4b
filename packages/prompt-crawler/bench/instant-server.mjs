// An instant chat-completions server for the overhead benchmark, run as its own process so its CPU
// does not count against the crawler. Every reply holds 20 new items of realistic size (a realistic
// parse, filter, dedupe and write load); prints its base URL on stdout.
import { createServer } from 'node:http';

let counter = 0;
// characters Zipf-distributed over 3,500 code points, like Chinese text (same model as bench/rouge.ts)
const V = 3500;
const cdf = new Float64Array(V);
let acc = 0;
for (let k = 0; k < V; k++) cdf[k] = acc += 1 / (k + 1);
for (let k = 0; k < V; k++) cdf[k] /= acc;
let seed = 12345;
const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296;
function char() {
  const u = rand();
  let lo = 0;
  let hi = V - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cdf[mid] < u) lo = mid + 1;
    else hi = mid;
  }
  return String.fromCharCode(0x4e00 + ((lo * 7919) % 20000));
}
function text(n) {
  let s = '';
  for (let i = 0; i < n; i++) s += char();
  return s;
}
function item() {
  counter++;
  return {
    instruction: `请${text(8 + Math.floor(rand() * 20))}`,
    input: counter % 2 ? '' : text(30 + Math.floor(rand() * 60)),
    output: text(60 + Math.floor(rand() * 200)),
  };
}

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const items = [];
    for (let i = 0; i < 20; i++) items.push(item());
    const content = '```json\n' + JSON.stringify(items, null, 2) + '\n```';
    const body = JSON.stringify({
      id: 'x',
      object: 'chat.completion',
      created: 0,
      model: 'instant',
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 400, completion_tokens: 1200, total_tokens: 1600 },
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => console.log(`http://127.0.0.1:${server.address().port}/v1`));
