// An instant chat-completions server for the overhead benchmark, run as its own process so its CPU
// does not count against the crawler. Every reply holds 20 new unique items (a realistic parse and
// write load); prints its base URL on stdout.
import { createServer } from 'node:http';

let counter = 0;
const chars = '的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处府研';
function item() {
  counter++;
  let s = '';
  let n = counter;
  for (let i = 0; i < 16; i++) {
    s += chars[(n * 2654435761 + i * 40503) % chars.length | 0];
    n = (n * 1103515245 + 12345) >>> 0;
  }
  return { instruction: `请解释${s}${counter}`, input: counter % 2 ? '' : '这是一段输入文本，用来模拟真实数据的长度。', output: `这是第${counter}条回答，内容足够长以模拟真实的输出。${s}` };
}

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const items = [];
    for (let i = 0; i < 20; i++) items.push(item());
    const content = '```json\n' + JSON.stringify(items, null, 2) + '\n```';
    const body = JSON.stringify({
      id: 'x', object: 'chat.completion', created: 0, model: 'instant',
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 400, completion_tokens: 1200, total_tokens: 1600 },
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => console.log(`http://127.0.0.1:${server.address().port}/v1`));
