// The official OpenAI Node SDK (openai@4) against a running `strata serve --api-key e2e-secret`
// (started by run_with_server.py): completions and chat, streaming and not, logprobs, n, seeds,
// stop strings, and the SDK's typed errors.
'use strict';
const path = require('path');
const assert = require('assert/strict');

const sdkDir = path.join(process.env.STRATA_E2E_WORK || '', 'node', 'node_modules', 'openai');
let OpenAI;
try {
  OpenAI = require(sdkDir);
} catch (e) {
  console.log(`SKIP: the openai SDK is not installed under ${sdkDir} (npm_setup.sh)`);
  process.exit(77);
}

const baseURL = `${process.env.STRATA_URL}/v1`;
const model = process.env.STRATA_MODEL_NAME;
const client = new OpenAI({ baseURL, apiKey: 'e2e-secret', maxRetries: 0, timeout: 60000 });

async function check(name, fn) {
  const t0 = Date.now();
  await fn();
  console.log(`ok: ${name} (${Date.now() - t0} ms)`);
}

// Usage without prompt_tokens_details (prefix-cache hits differ between two runs).
function tokenCounts(u) {
  return { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.total_tokens };
}

async function collectCompletionStream(params) {
  const stream = await client.completions.create({ ...params, stream: true });
  const texts = {};
  let usage = null;
  const finish = {};
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'text_completion');
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      texts[c.index] = (texts[c.index] || '') + c.text;
      if (c.finish_reason) finish[c.index] = c.finish_reason;
    }
  }
  return { texts, usage, finish };
}

async function collectChatStream(params) {
  const stream = await client.chat.completions.create({ ...params, stream: true });
  const texts = {};
  const finish = {};
  const roles = {};
  let usage = null;
  let logprobs = [];
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta.role) roles[c.index] = c.delta.role;
      if (c.delta.content) texts[c.index] = (texts[c.index] || '') + c.delta.content;
      if (c.finish_reason) finish[c.index] = c.finish_reason;
      if (c.logprobs && c.logprobs.content) logprobs = logprobs.concat(c.logprobs.content);
    }
  }
  return { texts, finish, roles, usage, logprobs };
}

async function main() {
  await check('models.list', async () => {
    const models = await client.models.list();
    assert.ok(models.data.some((m) => m.id === model), JSON.stringify(models.data));
    const card = await client.models.retrieve(model);
    assert.equal(card.id, model);
  });

  const prompt = 'The quick brown fox';
  let greedyText;
  await check('completions: JSON vs stream give the same greedy text', async () => {
    const r = await client.completions.create({ model, prompt, max_tokens: 12, temperature: 0 });
    assert.equal(r.object, 'text_completion');
    assert.equal(r.choices.length, 1);
    assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
    const s = await collectCompletionStream({ model, prompt, max_tokens: 12, temperature: 0, stream_options: { include_usage: true } });
    assert.equal(s.texts[0], r.choices[0].text);
    assert.deepEqual(tokenCounts(s.usage), tokenCounts(r.usage));
    assert.equal(s.finish[0], r.choices[0].finish_reason);
  });

  await check('completions: stop strings cut the text and never leak (JSON and stream)', async () => {
    const base = await client.completions.create({ model, prompt, max_tokens: 24, temperature: 0, ignore_eos: true });
    greedyText = base.choices[0].text;
    const chars = Array.from(greedyText);
    assert.ok(chars.length >= 8, `greedy text too short for a stop test: ${JSON.stringify(greedyText)}`);
    const stop = chars.slice(4, 7).join('');
    const expected = greedyText.slice(0, greedyText.indexOf(stop));
    const r = await client.completions.create({ model, prompt, max_tokens: 24, temperature: 0, ignore_eos: true, stop: [stop, 'never-seen-stop'] });
    assert.equal(r.choices[0].text, expected);
    assert.equal(r.choices[0].finish_reason, 'stop');
    const s = await collectCompletionStream({ model, prompt, max_tokens: 24, temperature: 0, ignore_eos: true, stop });
    assert.equal(s.texts[0] || '', expected);
    assert.equal(s.finish[0], 'stop');
  });

  await check('completions: token-id prompts, n, seeds, logprobs', async () => {
    // fetch() sends a string body as text/plain unless told: strata answers that with 415.
    const plain = await fetch(`${process.env.STRATA_URL}/tokenize`, { method: 'POST', body: JSON.stringify({ prompt }) });
    assert.equal(plain.status, 415);
    assert.equal((await plain.json()).error.code, 'unsupported_media_type');
    const tok = await fetch(`${process.env.STRATA_URL}/tokenize`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ prompt }),
    }).then((r) => r.json());
    const byIds = await client.completions.create({ model, prompt: tok.tokens, max_tokens: 12, temperature: 0 });
    const byText = await client.completions.create({ model, prompt, max_tokens: 12, temperature: 0 });
    assert.equal(byIds.choices[0].text, byText.choices[0].text);
    const a = await client.completions.create({ model, prompt, max_tokens: 8, n: 3, seed: 11, temperature: 1.0 });
    const b = await client.completions.create({ model, prompt, max_tokens: 8, n: 3, seed: 11, temperature: 1.0 });
    assert.equal(a.choices.length, 3);
    assert.deepEqual(a.choices.map((c) => c.text), b.choices.map((c) => c.text));
    const lp = await client.completions.create({ model, prompt, max_tokens: 4, logprobs: 3, temperature: 0 });
    const l = lp.choices[0].logprobs;
    assert.equal(l.tokens.length, l.token_logprobs.length);
    assert.equal(l.tokens.length, l.text_offset.length);
    assert.ok(l.top_logprobs.every((t) => Object.keys(t).length >= 1 && Object.keys(t).length <= 4));
  });

  const messages = [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Say something.' },
  ];
  await check('chat: JSON vs stream give the same greedy text; role first; usage chunk', async () => {
    const r = await client.chat.completions.create({ model, messages, max_completion_tokens: 10, temperature: 0 });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.role, 'assistant');
    const s = await collectChatStream({ model, messages, max_tokens: 10, temperature: 0, stream_options: { include_usage: true } });
    assert.equal(s.roles[0], 'assistant');
    assert.equal(s.texts[0] || '', r.choices[0].message.content);
    assert.equal(s.finish[0], r.choices[0].finish_reason);
    assert.deepEqual(tokenCounts(s.usage), tokenCounts(r.usage));
  });

  await check('chat: logprobs and top_logprobs', async () => {
    const r = await client.chat.completions.create({ model, messages, max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 2, ignore_eos: true });
    const content = r.choices[0].logprobs.content;
    assert.equal(content.length, r.usage.completion_tokens);
    for (const t of content) {
      assert.equal(typeof t.token, 'string');
      assert.ok(t.logprob <= 0);
      assert.ok(Array.isArray(t.bytes));
      assert.equal(t.top_logprobs.length, 2);
    }
    const s = await collectChatStream({ model, messages, max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 2, ignore_eos: true });
    assert.deepEqual(s.logprobs.map((t) => t.token), content.map((t) => t.token));
  });

  await check('chat: n=2 streaming', async () => {
    const s = await collectChatStream({ model, messages, max_tokens: 6, n: 2, seed: 5, temperature: 1.0 });
    assert.deepEqual(Object.keys(s.finish).sort(), ['0', '1']);
    assert.equal(s.roles[0], 'assistant');
    assert.equal(s.roles[1], 'assistant');
  });

  await check('an aborted stream does not hurt the server', async () => {
    const controller = new AbortController();
    const stream = await client.completions.create({ model, prompt, max_tokens: 200, ignore_eos: true, stream: true }, { signal: controller.signal });
    let n = 0;
    try {
      for await (const chunk of stream) {
        if (++n === 3) controller.abort();
      }
    } catch (e) {
      // the SDK raises an abort error
    }
    const r = await client.completions.create({ model, prompt, max_tokens: 2 });
    assert.equal(r.choices.length, 1);
  });

  await check('typed errors: 400 BadRequestError, 404 NotFoundError, 401 AuthenticationError', async () => {
    await assert.rejects(client.completions.create({ model, prompt, temperature: -3 }), (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError, String(e));
      assert.equal(e.status, 400);
      assert.equal(e.param, 'temperature');
      return true;
    });
    await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages }), (e) => {
      assert.ok(e instanceof OpenAI.NotFoundError, String(e));
      assert.equal(e.code, 'model_not_found');
      return true;
    });
    const wrong = new OpenAI({ baseURL, apiKey: 'wrong', maxRetries: 0 });
    await assert.rejects(wrong.models.list(), (e) => {
      assert.ok(e instanceof OpenAI.AuthenticationError, String(e));
      return true;
    });
    await assert.rejects(client.completions.create({ model, prompt, max_tokens: 1000000 }), (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError, String(e));
      assert.match(e.message, /maximum context length is \d+ tokens/);
      return true;
    });
  });
  console.log('all OpenAI SDK checks passed');
}

main().catch((e) => {
  console.error('FAIL:', e);
  process.exit(1);
});
