// The official `openai` package's Responses API against /v1/responses:
// text, streaming (the SDK's event stream and its final response), a
// function tool round trip, routing to an Anthropic endpoint, and the
// stateless rule (store: true is a 400 naming the field).
// Usage: node test/responses.mjs BASE_URL KEY
import assert from "node:assert/strict";
import OpenAI from "openai";

const [base, key] = process.argv.slice(2);
const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: key, maxRetries: 0 });

for (const model of ["mock/echo", "test/claude"]) {
  const r = await openai.responses.create({ model, input: "hello responses", instructions: "be brief", strategy: "cheapest" });
  assert.equal(r.object, "response");
  assert.equal(r.status, "completed");
  assert.equal(r.output_text, "hello responses");
  assert.equal(r.usage.output_tokens, 2);
  assert.ok(r.id.startsWith("gen-"));

  const stream = await openai.responses.create({ model, input: "a streamed response", stream: true, strategy: "cheapest" });
  const types = [];
  let text = "";
  let done;
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === "response.output_text.delta") text += ev.delta;
    if (ev.type === "response.completed") done = ev.response;
  }
  assert.equal(text, "a streamed response");
  assert.equal(types[0], "response.created");
  assert.ok(types.includes("response.output_item.added"));
  assert.ok(types.includes("response.output_text.done"));
  assert.equal(types.at(-1), "response.completed");
  assert.equal(done.usage.output_tokens, 3);
  assert.equal(done.output[0].content[0].text, "a streamed response");

  // The SDK's own stream helper assembles the final response.
  const helper = openai.responses.stream({ model, input: "helper stream", strategy: "cheapest" });
  const final = await helper.finalResponse();
  assert.equal(final.output[0].content[0].text, "helper stream");
}

// Tools: the call comes back as a function_call item; its output goes back
// as a function_call_output in the next (whole) input.
const tools = [{ type: "function", name: "get_weather", description: "Weather of a city",
  parameters: { type: "object", properties: { query: { type: "string" } } } }];
const input = [{ role: "user", content: "weather in Paris" }];
const call = await openai.responses.create({ model: "test/claude", input, tools, strategy: "cheapest" });
const fc = call.output.find((o) => o.type === "function_call");
assert.equal(fc.name, "get_weather");
assert.deepEqual(JSON.parse(fc.arguments), { query: "weather in Paris" });
const answer = await openai.responses.create({ model: "test/claude", tools, strategy: "cheapest",
  input: [...input, fc, { type: "function_call_output", call_id: fc.call_id, output: "sunny" }] });
assert.equal(answer.output_text, "Tool said: sunny");

// Streamed tool call: arguments arrive as deltas.
let args = "";
for await (const ev of await openai.responses.create({ model: "test/claude", input, tools, stream: true, strategy: "cheapest" })) {
  if (ev.type === "response.function_call_arguments.delta") args += ev.delta;
}
assert.deepEqual(JSON.parse(args), { query: "weather in Paris" });

// Stateless: store: true is refused, naming the field.
await assert.rejects(openai.responses.create({ model: "mock/echo", input: "x", store: true }), (err) => {
  assert.equal(err.status, 400);
  assert.equal(err.error.type, "invalid_request");
  assert.equal(err.error.metadata.field, "/store");
  return true;
});
await assert.rejects(openai.responses.create({ model: "mock/echo", input: "x", previous_response_id: "resp_1" }), (err) => {
  assert.equal(err.status, 400);
  assert.equal(err.error.metadata.field, "/previous_response_id");
  return true;
});
console.log("ok");
