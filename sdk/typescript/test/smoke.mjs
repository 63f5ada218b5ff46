// Drives a running gateway with JavaScript clients: the generated SDK for
// the account and management routes, the official `openai` package for
// completions (JSON and streaming). Usage: node test/smoke.mjs BASE_URL KEY
// (an owner key). Run by internal/app's TestJavaScriptClients.
import assert from "node:assert/strict";
import OpenAI from "openai";
import { createPerpetuoClient } from "../dist/index.js";

const [base, ownerKey] = process.argv.slice(2);
const api = createPerpetuoClient(base, ownerKey);

const { data: me, error: meErr } = await api.GET("/v1/key");
assert.equal(meErr, undefined);
assert.equal(me.data.role, "owner");
const workspaceId = me.data.workspace_id;

const { data: member } = await api.POST("/v1/workspaces/{workspaceId}/members", {
  params: { path: { workspaceId } },
  body: { name: "node", role: "member" },
});
const { data: created, response } = await api.POST("/v1/workspaces/{workspaceId}/keys", {
  params: { path: { workspaceId } },
  body: { name: "node key", member_id: member.data.id, limit: 1 },
});
assert.equal(response.status, 201);
assert.match(created.data.key, /^pk_/);

const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: created.data.key, maxRetries: 0 });
const completion = await openai.chat.completions.create({
  model: "mock/echo",
  messages: [{ role: "user", content: "hello from node" }],
});
assert.equal(completion.choices[0].message.content, "hello from node");
assert.equal(completion.provider, "mock");
assert.ok(completion.usage.cost > 0);

let text = "";
let usage;
const stream = await openai.chat.completions.create({
  model: "mock/echo",
  stream: true,
  messages: [{ role: "user", content: "streamed to node" }],
});
for await (const chunk of stream) {
  text += chunk.choices[0]?.delta?.content ?? "";
  if (chunk.usage) usage = chunk.usage;
}
assert.equal(text, "streamed to node");
assert.ok(usage.cost > 0, "usage with cost rides the last chunk");

const { data: gen } = await api.GET("/v1/generation", { params: { query: { id: completion.id } } });
assert.equal(gen.data.tokens_completion, completion.usage.completion_tokens);
assert.equal(gen.data.provider_name, "mock");

const { error: missing, response: r404 } = await api.GET("/v1/generation", {
  params: { query: { id: "gen-0000000000AAAAAAAAAAAAAAAA" } },
});
assert.equal(r404.status, 404);
assert.equal(missing.error.type, "not_found");

await assert.rejects(
  openai.chat.completions.create({ model: "nobody/nothing", messages: [{ role: "user", content: "x" }] }),
  (err) => err.status === 404 && err.error?.type === "not_found",
);
console.log("ok");
