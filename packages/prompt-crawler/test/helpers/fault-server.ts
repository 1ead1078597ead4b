/**
 * A real HTTP server speaking the chat-completions protocol (POST /v1/chat/completions), for tests and
 * benchmarks. It invents instruction items and injects the faults a crawler meets in practice:
 * 429 with Retry-After, 500, connection resets, replies slower than the client's timeout, a cut-off
 * HTTP body, messy reply text (fences, prose, one object per line), malformed objects, truncated
 * final items (finish_reason=length), duplicates of items already served, "doomed" prompts that
 * always fail, a body streamed without end (no content-length), and 200 replies with nothing usable in
 * them ('junk': prose, a refusal, empty lists, items the filters drop, an item already served). It keeps a
 * ledger of everything it did so tests can account for every outcome.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hashString as hash32, mulberry32 } from '@cllama/core';

export interface FaultPlan {
  seed?: number;
  itemsPerReply?: number;
  p429?: number;
  p500?: number;
  pReset?: number;
  pSlow?: number;
  pBadBody?: number;
  /** probability that one item in a reply is replaced by an unparseable object */
  pMalformedItem?: number;
  /** probability that the reply is cut off inside a final extra item (finish_reason=length) */
  pTruncated?: number;
  /** probability per item of re-sending an item served earlier instead of a new one */
  pDuplicate?: number;
  /** probability per item of sending a served item's instruction with one character changed */
  pNearDuplicate?: number;
  /** successful replies are delayed by a random time in this range (ms) */
  latencyMs?: [number, number];
  retryAfter?: string;
  retryAfterMs?: string;
  slowMs?: number;
  /** prompts with hash32(prompt) % doomModulo === 0 always get 500 (0 = none) */
  doomModulo?: number;
  /** error bodies quote the request's Authorization header (a careless proxy) */
  echoAuthInErrors?: boolean;
  /** error bodies quote the bare key from the Authorization header ("Incorrect API key provided: sk-…") */
  echoKeyInErrors?: boolean;
  /** also put the Authorization header into one item's output now and then */
  echoAuthInContent?: boolean;
  /** reply instantly with a fixed body (overhead benchmark) */
  instant?: boolean;
  /** the first requests get these faults, in order, whatever the probabilities say ('ok': a normal reply) */
  initialFaults?: ScriptedFault[];
  /** every request after `initialFaults` gets this fault (a server that fails everything) */
  everyRequest?: ScriptedFault;
  /** an 'endless' body ends, unterminated JSON, after this many bytes (default 1 GiB: a client without a cap still finishes) */
  endlessLimitBytes?: number;
  /** the first successful replies carry exactly these items (then generated ones) */
  firstReplies?: Array<Array<{ instruction: string; input: string; output: string }>>;
  /** answer 400 to requests that carry response_format (a server without structured output) */
  rejectStructured?: boolean;
  /** status code for every request (e.g. 401) */
  forceStatus?: number;
}

export type ScriptedFault = 'ok' | '429' | '500' | 'reset' | 'slow' | 'badBody' | 'stall' | 'endless' | 'junk';

/** What a 'junk' reply says, in turn: a 200 that yields no item a crawl can keep. */
const JUNK_REPLIES: Array<(served: Array<{ instruction: string; input: string; output: string }>) => string> = [
  (served) => JSON.stringify(served.slice(0, 2)),
  () => 'Sure! Here are some ideas you could explore on your own. Let me know if you want more.',
  () => JSON.stringify([{ instruction: '嗨', input: '', output: '好' }]),
  () => "I'm sorry, but I can't help with that request.",
  () => '[]',
  () => '```json\n{"items": []}\n```',
];

export interface Ledger {
  requests: number;
  ok: number;
  faults: {
    s429: number;
    s500: number;
    reset: number;
    slow: number;
    badBody: number;
    stall: number;
    endless: number;
    junk: number;
    doomed: number;
    forced: number;
  };
  /** body bytes the server managed to send for 'endless' replies (what the client read or buffered) */
  endlessBytes: number;
  malformedItems: number;
  truncatedItems: number;
  duplicatesSent: number;
  /** every intact item served, by instruction */
  served: Map<string, { instruction: string; input: string; output: string }>;
  /** attempts per (generation, prompt hash) for doomed prompts */
  doomedAttempts: Map<string, number>;
  authHeadersSeen: Set<string>;
  requestTimes: number[];
  structuredRequests: number;
}

export interface FaultServer {
  url: string;
  ledger: Ledger;
  /** bumped by tests between crawler processes so attempts are counted per process */
  generation: number;
  plan: FaultPlan;
  close(): Promise<void>;
}

const CJK_BASE = 0x4e00;

export async function startFaultServer(plan: FaultPlan = {}): Promise<FaultServer> {
  const rng = mulberry32(plan.seed ?? 1);
  const ledger: Ledger = {
    requests: 0,
    ok: 0,
    faults: { s429: 0, s500: 0, reset: 0, slow: 0, badBody: 0, stall: 0, endless: 0, junk: 0, doomed: 0, forced: 0 },
    endlessBytes: 0,
    malformedItems: 0,
    truncatedItems: 0,
    duplicatesSent: 0,
    served: new Map(),
    doomedAttempts: new Map(),
    authHeadersSeen: new Set(),
    requestTimes: [],
    structuredRequests: 0,
  };
  const servedList: Array<{ instruction: string; input: string; output: string }> = [];
  let counter = 0;
  const randomCjk = (n: number) => {
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(CJK_BASE + Math.floor(rng() * 3000));
    return s;
  };
  const newItem = () => {
    counter++;
    // random characters: distinct instructions are also far apart in ROUGE-L
    const item = { instruction: `${randomCjk(14)}${counter}`, input: rng() < 0.5 ? '' : randomCjk(10), output: randomCjk(20) };
    return item;
  };
  const instantBody = JSON.stringify(
    completionBody(JSON.stringify([{ instruction: '解释一下什么是光合作用', input: '', output: '植物利用光能合成有机物。' }]), 'stop'),
  );

  const server: FaultServer = {
    url: '',
    ledger,
    generation: 0,
    plan,
    close: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };

  const http = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      ledger.requests++;
      ledger.requestTimes.push(Date.now());
      if (req.headers.authorization) ledger.authHeadersSeen.add(req.headers.authorization);
      if (plan.instant) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(instantBody);
        ledger.ok++;
        return;
      }
      if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `no route ${req.url}` } }));
        return;
      }
      let body: { messages?: Array<{ content: string }>; response_format?: unknown };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        res.writeHead(400).end('{"error":{"message":"bad json"}}');
        return;
      }
      const prompt = body.messages?.[body.messages.length - 1]?.content ?? '';
      const auth = req.headers.authorization ?? '';
      const errorBody = (msg: string) =>
        JSON.stringify({
          error: {
            message: plan.echoAuthInErrors
              ? `${msg} (request had Authorization: ${auth})`
              : plan.echoKeyInErrors
                ? `${msg}: Incorrect API key provided: ${auth.replace(/^Bearer /, '')}.`
                : msg,
            type: 'server_error',
          },
        });

      ledger.structuredRequests += body.response_format !== undefined ? 1 : 0;
      if (plan.rejectStructured && body.response_format !== undefined) {
        ledger.faults.forced++;
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(errorBody("Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model."));
        return;
      }
      if (plan.forceStatus) {
        ledger.faults.forced++;
        res.writeHead(plan.forceStatus, { 'content-type': 'application/json' });
        res.end(errorBody(`forced ${plan.forceStatus}`));
        return;
      }
      if (plan.doomModulo && hash32(prompt) % plan.doomModulo === 0) {
        const key = `${server.generation}:${hash32(prompt)}`;
        ledger.doomedAttempts.set(key, (ledger.doomedAttempts.get(key) ?? 0) + 1);
        ledger.faults.doomed++;
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(errorBody('this prompt always fails'));
        return;
      }
      const scripted = plan.initialFaults?.[ledger.requests - 1] ?? plan.everyRequest;
      const r = scripted ? 2 : rng();
      let edge = 0;
      if (scripted === '429' || r < (edge += plan.p429 ?? 0)) {
        ledger.faults.s429++;
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (plan.retryAfter !== undefined) headers['retry-after'] = plan.retryAfter;
        if (plan.retryAfterMs !== undefined) headers['retry-after-ms'] = plan.retryAfterMs;
        res.writeHead(429, headers);
        res.end(errorBody('Rate limit reached, slow down'));
        return;
      }
      if (scripted === '500' || r < (edge += plan.p500 ?? 0)) {
        ledger.faults.s500++;
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(errorBody('The server had an error while processing your request'));
        return;
      }
      if (scripted === 'reset' || r < (edge += plan.pReset ?? 0)) {
        ledger.faults.reset++;
        req.socket.destroy();
        return;
      }
      if (scripted === 'slow' || r < (edge += plan.pSlow ?? 0)) {
        ledger.faults.slow++;
        const t = setTimeout(() => {
          if (!res.destroyed) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completionBody('[]', 'stop')));
        }, plan.slowMs ?? 2000);
        res.on('close', () => clearTimeout(t));
        return;
      }
      if (scripted === 'stall') {
        // headers and the first bytes of the body, then nothing (the connection stays open)
        ledger.faults.stall++;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '4096' });
        res.write('{"id":"chatcmpl-x","obj');
        return;
      }
      if (scripted === 'endless') {
        // a 200 whose body never ends: no content-length, chunks as fast as the client takes them
        ledger.faults.endless++;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"id":"chatcmpl-x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"');
        const chunk = Buffer.alloc(64 << 10, 'a');
        const limit = plan.endlessLimitBytes ?? 1 << 30;
        let sent = 0;
        const pump = () => {
          while (!res.destroyed && sent < limit) {
            sent += chunk.length;
            ledger.endlessBytes += chunk.length;
            if (!res.write(chunk)) {
              res.once('drain', pump);
              return;
            }
          }
          if (!res.destroyed) res.end();
        };
        pump();
        return;
      }
      if (scripted === 'junk') {
        const content = JUNK_REPLIES[ledger.faults.junk % JUNK_REPLIES.length]!(servedList);
        ledger.faults.junk++;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(completionBody(content, 'stop')));
        return;
      }
      if (scripted === 'badBody' || r < (edge += plan.pBadBody ?? 0)) {
        ledger.faults.badBody++;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"id":"chatcmpl-x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"[{\\"instr');
        return;
      }

      // a successful reply
      const n = plan.itemsPerReply ?? 5;
      const parts: string[] = [];
      const fixed = plan.firstReplies?.[ledger.ok];
      if (fixed) {
        for (const item of fixed) {
          ledger.served.set(item.instruction, item);
          parts.push(JSON.stringify(item));
        }
      }
      for (let i = 0; i < (fixed ? 0 : n); i++) {
        let item: { instruction: string; input: string; output: string };
        if (servedList.length > 0 && rng() < (plan.pDuplicate ?? 0)) {
          item = servedList[Math.floor(rng() * servedList.length)];
          ledger.duplicatesSent++;
        } else if (servedList.length > 0 && rng() < (plan.pNearDuplicate ?? 0)) {
          const src = servedList[Math.floor(rng() * servedList.length)];
          const chars = [...src.instruction];
          chars[Math.floor(rng() * chars.length)] = String.fromCharCode(CJK_BASE + 3000 + Math.floor(rng() * 1000));
          item = { ...newItem(), instruction: chars.join('') };
        } else {
          item = newItem();
          if (plan.echoAuthInContent && rng() < 0.1) item = { ...item, output: `${item.output} ${auth}` };
        }
        if (rng() < (plan.pMalformedItem ?? 0)) {
          ledger.malformedItems++;
          parts.push(`{"instruction": "${item.instruction}" ::: "output": "${item.output}"}`);
          continue;
        }
        ledger.served.set(item.instruction, item);
        if (!servedList.includes(item)) servedList.push(item);
        parts.push(JSON.stringify(item));
      }
      let finish = 'stop';
      let content: string;
      const style = Math.floor(rng() * 3);
      if (body.response_format !== undefined) content = `{"items": [${parts.join(', ')}]}`;
      else if (style === 0) content = '```json\n[\n' + parts.join(',\n') + '\n]\n```';
      else if (style === 1) content = '以下是满足要求的数据：\n' + parts.join('\n') + '\n希望对你有帮助。';
      else content = '[' + parts.join(', ') + ']';
      if (rng() < (plan.pTruncated ?? 0)) {
        ledger.truncatedItems++;
        finish = 'length';
        const extra = newItem();
        const cut = JSON.stringify(extra);
        content = '[' + parts.join(', ') + ', ' + cut.slice(0, Math.floor(cut.length / 2));
      }
      ledger.ok++;
      const reply = JSON.stringify(completionBody(content, finish, body.response_format !== undefined));
      const send = () => {
        if (!res.destroyed) res.writeHead(200, { 'content-type': 'application/json' }).end(reply);
      };
      const [lo, hi] = plan.latencyMs ?? [0, 0];
      if (hi > 0) setTimeout(send, lo + rng() * (hi - lo));
      else send();
    });
  });
  http.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  server.url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/v1`;
  return server;
}

function completionBody(content: string, finishReason: string, _structured = false) {
  return {
    id: 'chatcmpl-test',
    object: 'chat.completion',
    created: 1700000000,
    model: 'fault-server',
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: finishReason }],
    usage: { prompt_tokens: 400, completion_tokens: 600, total_tokens: 1000 },
  };
}
