// Drives a running Perpetuo through OpenRouter's own SDK, which validates
// every response against OpenRouter's schema: a missing or mistyped field
// fails the call. Usage: node compat.mjs <gateway URL> <key> <budgeted key>
// <narrowed key>: the budgeted key's guardrail budget is too small for any
// request, the narrowed key's guardrail allows no mock/* model, and the
// model test/leaky is served only by an upstream answering 429. Prints
// "ok", or each failing call with the SDK's validation issues, and exits 1.
import { OpenRouter } from "@openrouter/sdk";

const [base, key, budgetedKey, narrowedKey] = process.argv.slice(2);
const or = new OpenRouter({ apiKey: key, serverURL: base + "/api/v1", retryConfig: { strategy: "none" } });
const failures = [];
async function call(name, f) {
  try {
    return await f();
  } catch (e) {
    const issues = e.cause?.issues ?? e.issues;
    failures.push(`${name}: ${e.constructor?.name} ${issues ? JSON.stringify(issues.map((i) => [i.path.join("."), i.message])) : e.message}`);
  }
}
function check(name, cond, detail) {
  if (!cond) failures.push(`${name}: ${detail}`);
}

const messages = [{ role: "user", content: "hello from the sdk" }];
const res = await call("chat.send", () => or.chat.send({ chatRequest: { model: "mock/echo", messages } }));
check("chat.send", res?.choices?.[0]?.message?.content === "hello from the sdk", "echo missing");
check("chat.send cost_details", typeof res?.usage?.costDetails?.upstreamInferencePromptCost === "number", "prompt cost missing");
const chunks = await call("chat.send stream", async () => {
  const out = [];
  for await (const c of await or.chat.send({ chatRequest: { model: "mock/echo", messages, stream: true } })) out.push(c);
  return out;
});
const text = (chunks ?? []).map((c) => c.choices?.[0]?.delta?.content ?? "").join("");
check("chat.send stream", text === "hello from the sdk", `streamed ${JSON.stringify(text)}`);
check("chat.send stream usage", chunks?.at(-1)?.usage?.totalTokens > 0, "no usage on the last chunk");

const models = await call("models.list", () => or.models.list());
check("models.list", models?.result?.data?.some((m) => m.id === "mock/echo"), "mock/echo not listed");
const eps = await call("endpoints.list", () => or.endpoints.list({ author: "mock", slug: "echo" }));
check("endpoints.list", eps?.data?.endpoints?.length > 0, "no endpoints");
await call("endpoints.listZdrEndpoints", () => or.endpoints.listZdrEndpoints());
const providers = await call("providers.list", () => or.providers.list());
check("providers.list", providers?.data?.length > 0, "no providers");
const k = await call("apiKeys.getCurrentKeyMetadata", () => or.apiKeys.getCurrentKeyMetadata());
check("apiKeys.getCurrentKeyMetadata", typeof k?.data?.usage === "number", "no usage");
if (res?.id) {
  const g = await call("generations.getGeneration", () => or.generations.getGeneration({ id: res.id }));
  check("generations.getGeneration", g?.data?.id === res.id && g?.data?.tokensPrompt > 0, "wrong generation");
}

// Errors surface as the SDK's typed errors with the gateway's status and
// the envelope's message.
async function expectError(name, client, model, status, errorClass, messagePart) {
  try {
    await client.chat.send({ chatRequest: { model, messages } });
    failures.push(`${name}: the call succeeded`);
  } catch (e) {
    check(name, e.statusCode === status && e.constructor?.name === errorClass && e.message.includes(messagePart),
      `${e.constructor?.name} ${e.statusCode} ${JSON.stringify(e.message)}`);
  }
}
const client = (apiKey) => new OpenRouter({ apiKey, serverURL: base + "/api/v1", retryConfig: { strategy: "none" } });
await expectError("401", client("pk_not_a_key"), "mock/echo", 401, "UnauthorizedResponseError", "key");
await expectError("402", client(budgetedKey), "mock/echo", 402, "PaymentRequiredResponseError", "limit");
await expectError("403", client(narrowedKey), "mock/echo", 403, "ForbiddenResponseError", "mock/echo");
await expectError("404", or, "nobody/no-such-model", 404, "NotFoundResponseError", "nobody/no-such-model");
await expectError("429", or, "test/leaky", 429, "TooManyRequestsResponseError", "rate");

// Management in OpenRouter's shape: keys, guardrails and their assignments.
const created = await call("apiKeys.create", () => or.apiKeys.create({ requestBody: { name: "sdk key", limit: 5, limitReset: "monthly" } }));
const hash = created?.data?.hash;
check("apiKeys.create", typeof created?.key === "string" && created?.data?.limit === 5 && created?.data?.limitReset === "monthly", "wrong key");
const keyList = await call("apiKeys.list", () => or.apiKeys.list());
check("apiKeys.list", keyList?.data?.some((k) => k.hash === hash), "the new key is not listed");
const got = await call("apiKeys.get", () => or.apiKeys.get({ hash }));
check("apiKeys.get", got?.data?.name === "sdk key" && got?.data?.limitRemaining === 5, "wrong key");
const upd = await call("apiKeys.update", () => or.apiKeys.update({ hash, requestBody: { name: "renamed", limit: null } }));
check("apiKeys.update", upd?.data?.name === "renamed" && upd?.data?.limit === null && upd?.data?.limitReset === "monthly", "update not applied");
const gr = await call("guardrails.create", () => or.guardrails.create({ createGuardrailRequest: { name: "sdk guardrail", limitUsd: 2, resetInterval: "weekly", allowedModels: ["mock/*"] } }));
const grID = gr?.data?.id;
check("guardrails.create", grID && gr?.data?.limitUsd === 2, "wrong guardrail");
const grList = await call("guardrails.list", () => or.guardrails.list());
check("guardrails.list", grList?.result?.data?.some((g) => g.id === grID) && grList?.result?.totalCount >= 1, "the new guardrail is not listed");
const grGot = await call("guardrails.get", () => or.guardrails.get({ id: grID }));
check("guardrails.get", grGot?.data?.name === "sdk guardrail", "wrong guardrail");
const grUpd = await call("guardrails.update", () => or.guardrails.update({ id: grID, updateGuardrailRequest: { description: "patched" } }));
check("guardrails.update", grUpd?.data?.description === "patched" && grUpd?.data?.limitUsd === 2 && grUpd?.data?.allowedModels?.[0] === "mock/*", "PATCH lost a field");
const assigned = await call("guardrails.bulkAssignKeys", () => or.guardrails.bulkAssignKeys({ id: grID, bulkAssignKeysRequest: { keyHashes: [hash] } }));
check("guardrails.bulkAssignKeys", assigned?.assignedCount === 1, JSON.stringify(assigned));
const unassigned = await call("guardrails.bulkUnassignKeys", () => or.guardrails.bulkUnassignKeys({ id: grID, bulkUnassignKeysRequest: { keyHashes: [hash] } }));
check("guardrails.bulkUnassignKeys", unassigned?.unassignedCount === 1, JSON.stringify(unassigned));
const member = created?.data?.creatorUserId;
const mAssigned = await call("guardrails.bulkAssignMembers", () => or.guardrails.bulkAssignMembers({ id: grID, bulkAssignMembersRequest: { memberUserIds: [member] } }));
check("guardrails.bulkAssignMembers", mAssigned?.assignedCount === 1, JSON.stringify(mAssigned));
const mUnassigned = await call("guardrails.bulkUnassignMembers", () => or.guardrails.bulkUnassignMembers({ id: grID, bulkUnassignMembersRequest: { memberUserIds: [member] } }));
check("guardrails.bulkUnassignMembers", mUnassigned?.unassignedCount === 1, JSON.stringify(mUnassigned));
const grDel = await call("guardrails.delete", () => or.guardrails.delete({ id: grID }));
check("guardrails.delete", grDel?.deleted === true, JSON.stringify(grDel));
const del = await call("apiKeys.delete", () => or.apiKeys.delete({ hash }));
check("apiKeys.delete", del?.deleted === true, JSON.stringify(del));
try {
  await or.apiKeys.get({ hash });
  failures.push("apiKeys.get after delete: the call succeeded");
} catch (e) {
  check("apiKeys.get after delete", e.statusCode === 404 && e.constructor?.name === "NotFoundResponseError", `${e.constructor?.name} ${e.statusCode}`);
}
// Workspaces and members: Perpetuo's shape carries OpenRouter's fields. The
// workspace has a default guardrail (the SDK requires one; Perpetuo's are optional).
const wsList = await call("workspaces.list", () => or.workspaces.list());
const ws = wsList?.result?.data?.[0];
check("workspaces.list", wsList?.result?.data?.length === 1 && wsList?.result?.totalCount === 1 && ws?.slug === ws?.id, JSON.stringify(wsList?.result));
const wsGot = await call("workspaces.get", () => or.workspaces.get({ id: ws?.id }));
check("workspaces.get", wsGot?.data?.id === ws?.id && wsGot?.data?.isObservabilityIoLoggingEnabled === false, "wrong workspace");
const members = await call("workspaces.listMembers", () => or.workspaces.listMembers({ id: ws?.id }));
check("workspaces.listMembers", members?.result?.data?.some((m) => m.userId === member && m.workspaceId === ws?.id), "the key's member is not listed");

// What Perpetuo does not offer answers a typed error naming the feature.
try {
  await or.credits.getCredits();
  failures.push("credits.getCredits: the call succeeded");
} catch (e) {
  const feature = JSON.parse(e.body ?? "{}")?.error?.metadata?.feature;
  check("credits.getCredits", e.statusCode === 501 && feature === "credits", `${e.constructor?.name} ${e.statusCode} ${e.body}`);
}

if (failures.length) {
  console.log(failures.join("\n"));
  process.exit(1);
}
console.log("ok");
