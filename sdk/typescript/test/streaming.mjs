// Streams through the gateway with the official `openai` package and the
// Vercel AI SDK (`ai` with `@ai-sdk/openai-compatible`): a slow upstream,
// so the stream carries keep-alive comments, and a stream cut mid-way,
// which each client must surface as an error, not a clean finish.
// Usage: node test/streaming.mjs BASE_URL KEY
import assert from "node:assert/strict";
import OpenAI from "openai";
import { streamText } from "ai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";

const [base, key] = process.argv.slice(2);

// The raw stream must hold keep-alives, or this test proves nothing.
const raw = await fetch(`${base}/v1/chat/completions`, {
  method: "POST",
  headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
  body: JSON.stringify({ model: "mock/echo", stream: true, messages: [{ role: "user", content: "slow and steady" }] }),
});
assert.match(await raw.text(), /^: PERPETUO PROCESSING$/m);

const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: key, maxRetries: 0 });
let text = "";
for await (const chunk of await openai.chat.completions.create({
  model: "mock/echo",
  stream: true,
  messages: [{ role: "user", content: "slow and steady" }],
})) {
  text += chunk.choices[0]?.delta?.content ?? "";
}
assert.equal(text, "slow and steady");

await assert.rejects(
  (async () => {
    for await (const _ of await openai.chat.completions.create({
      model: "test/leaky",
      stream: true,
      messages: [{ role: "user", content: "one two three four" }],
    })) {
      // drain
    }
  })(),
  (err) => /provider_unavailable|cut off/.test(String(err?.message) + JSON.stringify(err?.error ?? {})),
  "openai: a stream cut mid-way throws",
);

const provider = createOpenAICompatible({ name: "perpetuo", baseURL: `${base}/v1`, apiKey: key });
const ok = streamText({ model: provider("mock/echo"), prompt: "slow and steady", maxRetries: 0 });
let aiText = "";
for await (const part of ok.textStream) aiText += part;
assert.equal(aiText, "slow and steady");
assert.equal(await ok.finishReason, "stop");

const cut = streamText({ model: provider("test/leaky"), prompt: "one two three four", maxRetries: 0, onError: () => {} });
const kinds = [];
let errorPart;
for await (const part of cut.fullStream) {
  kinds.push(part.type);
  if (part.type === "error") errorPart = part;
}
assert.ok(errorPart, `ai: the cut stream yields an error part (got ${kinds.join(",")})`);
assert.notEqual(await cut.finishReason, "stop", "ai: a cut stream does not finish cleanly");
console.log("ok");
