// Prints, as JSON, the response schema @openrouter/sdk validates for each
// route the compatibility suite calls: [{method, path, status, schema}],
// the schema as JSON Schema of the wire form (OpenRouter's field names).
// openrouter_sdk_test.go checks Perpetuo's spec against them.
import * as z from "zod/v4";
import * as operations from "@openrouter/sdk/models/operations";
import * as models from "@openrouter/sdk/models";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const funcs = [
  "chatSend", "modelsList", "endpointsList", "endpointsListZdrEndpoints", "providersList",
  "apiKeysGetCurrentKeyMetadata", "generationsGetGeneration",
  "apiKeysList", "apiKeysCreate", "apiKeysGet", "apiKeysUpdate", "apiKeysDelete",
  "guardrailsList", "guardrailsCreate", "guardrailsGet", "guardrailsUpdate", "guardrailsDelete",
  "guardrailsBulkAssignKeys", "guardrailsBulkUnassignKeys", "guardrailsBulkAssignMembers", "guardrailsBulkUnassignMembers",
  "workspacesList", "workspacesGet", "workspacesListMembers",
];
const root = path.dirname(createRequire(import.meta.url).resolve("@openrouter/sdk/package.json"));
const out = [];
for (const f of funcs) {
  const src = fs.readFileSync(path.join(root, "esm", "funcs", f + ".js"), "utf8");
  const p = src.match(/pathToFunc\("([^"]*)"\)/)[1];
  const method = src.match(/method: "([A-Z]+)"/)[1];
  const [, status, ns, name] = src.match(/M\.json\((\d+), (operations|models)\.(\w+)\$inboundSchema/);
  let schema = z.toJSONSchema((ns === "operations" ? operations : models)[name + "$inboundSchema"], { io: "input", unrepresentable: "any" });
  if (schema.properties?.Result) schema = schema.properties.Result; // a page iterator's wrapper, not on the wire
  if (schema.anyOf) schema = schema.anyOf.find((s) => s.properties?.choices); // chat: the JSON form, not the stream
  out.push({ func: f, method, path: p, status: Number(status), schema });
}
console.log(JSON.stringify(out));
