// The real `openai` npm client (pinned in package.json / package-lock.json,
// installed by scripts/fetch_test_data.sh) against a running strata daemon's
// OpenAI-compatible API. Driven by tests/integration/openai_http_test.cc:
//
//   node openai_client_test.mjs NODE_MODULES_DIR BASE_URL MODEL API_KEY
//
// BASE_URL is http://host:port/v1; API_KEY is a configured bearer token.
// Prints one line per check and exits 1 if any failed.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';

const [modulesDir, baseURL, model, apiKey] = process.argv.slice(2);
const require = createRequire(path.join(modulesDir, 'package.json'));
const { OpenAI } = require('openai');

// No retries: a 429 or 503 must show, not be retried away.
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120000 });
const intruder = new OpenAI({ baseURL, apiKey: 'sk-wrong', maxRetries: 0 });

// The embedded model has a 128-token context and a small vocabulary: two
// turns must fit.
const system = 'You tell kind tales.';

let failures = 0;
async function check(name, body) {
  try {
    await body();
    console.log(`ok - ${name}`);
  } catch (error) {
    failures += 1;
    console.log(`not ok - ${name}: ${error?.stack ?? error}`);
  }
}

async function expectError(promise, status, fields = {}) {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof OpenAI.APIError, `not an APIError: ${error}`);
    assert.equal(error.status, status, `status ${error.status}: ${error.message}`);
    for (const [key, value] of Object.entries(fields)) {
      assert.equal(error[key], value, `${key} = ${error[key]} (${error.message})`);
    }
    assert.ok(typeof error.error?.message === 'string' && error.error.message.length > 0,
              'the body has error.message');
    return error;
  }
  assert.fail(`expected HTTP ${status}, the call succeeded`);
}

await check('models.list names the served model', async () => {
  const models = [];
  for await (const m of client.models.list()) models.push(m);
  assert.deepEqual(models.map((m) => m.id), [model]);
  assert.equal(models[0].object, 'model');
});

let completionText = '';
await check('completions.create (not streamed)', async () => {
  const r = await client.completions.create({
    model, prompt: 'Once upon a time', max_tokens: 12, temperature: 0,
  });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.model, model);
  assert.equal(r.choices.length, 1);
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.equal(typeof r.choices[0].text, 'string');
  assert.ok(r.usage.prompt_tokens > 0);
  assert.ok(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 12);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  completionText = r.choices[0].text;
  assert.ok(completionText.length > 0);
});

await check('completions.create streamed gives the same greedy text', async () => {
  const stream = await client.completions.create({
    model, prompt: 'Once upon a time', max_tokens: 12, temperature: 0, stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      text += choice.text;
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  assert.ok(chunks > 2, `${chunks} chunks`);
  assert.equal(text, completionText);
  assert.ok(['stop', 'length'].includes(finish));
  assert.ok(usage && usage.completion_tokens > 0);
});

await check('completions.create takes token ids and stop strings', async () => {
  const r = await client.completions.create({
    model, prompt: [1, 403, 407, 261, 300], max_tokens: 40, temperature: 0, stop: ['.'],
  });
  assert.ok(!r.choices[0].text.includes('.'), r.choices[0].text);
  assert.equal(r.usage.prompt_tokens, 5);
});

let chatAnswer = '';
const firstTurn = [
  { role: 'system', content: system },
  { role: 'user', content: 'The sea?' },
];
await check('chat.completions.create (not streamed)', async () => {
  const r = await client.chat.completions.create({
    model, messages: firstTurn, max_tokens: 8, temperature: 0,
  });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(r.choices[0].message.content.length > 0);
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 16);
  chatAnswer = r.choices[0].message.content;
});

await check('chat.completions.create streamed gives the same greedy answer', async () => {
  const stream = await client.chat.completions.create({
    model, messages: firstTurn, max_tokens: 8, temperature: 0, stream: true,
    stream_options: { include_usage: true },
  });
  let content = '';
  let role = null;
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      if (choice.delta.role) role = choice.delta.role;
      if (choice.delta.content) content += choice.delta.content;
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  assert.equal(role, 'assistant');
  assert.equal(content, chatAnswer);
  assert.ok(['stop', 'length'].includes(finish));
  assert.ok(usage && usage.prompt_tokens > 16);
});

await check('a session\'s next turn reuses the cached prompt', async () => {
  const r = await client.chat.completions.create(
    {
      model, max_tokens: 4, temperature: 0,
      messages: [...firstTurn, { role: 'assistant', content: chatAnswer },
                 { role: 'user', content: 'Rain?' }],
    },
    { headers: { 'x-session-id': 'story-session' } });
  const cached = r.usage.prompt_tokens_details?.cached_tokens ?? 0;
  assert.ok(cached >= 16, `cached_tokens = ${cached} of ${r.usage.prompt_tokens}`);
  console.log(`# second turn: ${cached} of ${r.usage.prompt_tokens} prompt tokens cached`);
});

await check('a wrong model is 404 model_not_found', async () => {
  await expectError(client.chat.completions.create({
    model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }],
  }), 404, { code: 'model_not_found', param: 'model' });
});

await check('a bad temperature is 400 naming the parameter', async () => {
  await expectError(client.completions.create({
    model, prompt: 'hi', temperature: -1,
  }), 400, { param: 'temperature', type: 'invalid_request_error' });
});

await check('n > 1 is 400 naming n', async () => {
  await expectError(client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'hi' }], n: 2,
  }), 400, { param: 'n' });
});

await check('empty messages are 400 naming messages', async () => {
  await expectError(client.chat.completions.create({ model, messages: [] }), 400,
                    { param: 'messages' });
});

await check('a prompt over the limit is 400', async () => {
  await expectError(client.completions.create({
    model, prompt: 'the sea is blue and '.repeat(400), max_tokens: 4,
  }), 400, { param: 'prompt' });
});

await check('a wrong API key is 401', async () => {
  await expectError(intruder.models.list(), 401, { code: 'invalid_api_key' });
  await expectError(intruder.completions.create({ model, prompt: 'hi' }), 401);
});

console.log(failures === 0 ? 'all passed' : `${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
