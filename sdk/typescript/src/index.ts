// @perpetuo/sdk: a typed client for the Perpetuo gateway. The types in
// schema.d.ts are generated from api/openapi.yaml by `make generate`; this
// file is the thin hand-written part.
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./schema.js";

export type { components, paths };
/** Every schema of the API, e.g. `Schemas["Generation"]`. */
export type Schemas = components["schemas"];

/** A client for every route of the spec, with request and response types. */
export type PerpetuoClient = Client<paths>;

/**
 * createPerpetuoClient returns a client for the gateway at baseUrl (its
 * root, e.g. http://localhost:8080), authenticating with apiKey (pk_...).
 */
export function createPerpetuoClient(baseUrl: string, apiKey: string, fetchImpl?: typeof fetch): PerpetuoClient {
  return createClient<paths>({
    baseUrl,
    headers: { Authorization: `Bearer ${apiKey}` },
    ...(fetchImpl ? { fetch: fetchImpl } : {}),
  });
}
