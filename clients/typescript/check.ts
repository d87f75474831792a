// Runs the openapi-typescript + openapi-fetch client generated from the served document
// (generated/schema.d.ts, by ../test.sh) against the real host: every public endpoint once, the v2
// answers narrowed by an exhaustive switch on `kind` (a kind added to the document without a case
// here fails `tsc --strict`), one typed error, and the admin reload. Any mismatch exits non-zero.
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/schema.js";

type Schemas = components["schemas"];
type Kind = Schemas["TaskAnswer"]["kind"];
/** The answer records: every schema whose `kind` is one literal of TaskAnswer's kinds (from the document, not listed here). */
type Answer = {
  [N in keyof Schemas]: Schemas[N] extends { task: string; kind: infer K extends Kind } ? (Kind extends K ? never : Schemas[N]) : never;
}[keyof Schemas];

const [baseUrl, adminKey] = process.argv.slice(2) as [string, string];
const client = createClient<paths>({ baseUrl, headers: { "X-Api-Key": adminKey } });

function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(`client check failed: typescript: ${what}`);
}

/** Exhaustive: `never` in the default branch makes a new kind a compile error until it is handled. */
function describe(answer: Answer): string {
  switch (answer.kind) {
    case "classification":
      // With the fallback, `label` is the fallback label and the model's own top label is `fallback.topLabel`.
      check(answer.label.length > 0 && answer.scores[answer.fallback?.topLabel ?? answer.label] !== undefined, `${answer.task}: label and scores`);
      return `${answer.task}=${answer.label}${answer.fallback ? ` (fallback, top ${answer.fallback.topLabel})` : ""}`;
    case "regression":
      check(Number.isFinite(answer.value), `${answer.task}: value`);
      return `${answer.task}=${answer.value.toFixed(2)}`;
    case "tagging":
      check(answer.tags.length > 0, `${answer.task}: tags`);
      return `${answer.task}=[${answer.entities.map((e) => `${e.type}:${e.text}`).join(" ")}]`;
    case "embedding":
      check(answer.embedding.length > 0 && answer.embedding.every(Number.isFinite), `${answer.task}: embedding`);
      return `${answer.task}=[${answer.embedding.length} dimensions]`;
    case "examples":
      check(answer.label.length > 0, `${answer.task}: label`);
      return `${answer.task}=${answer.label}`;
    default: {
      const unknown: never = answer;
      throw new Error(`unknown kind ${JSON.stringify(unknown)}`);
    }
  }
}

const tasks = await client.GET("/tasks");
check(tasks.data !== undefined && tasks.data.tasks.length > 0, "GET /tasks");
const kinds = new Set<string>(tasks.data.tasks.map((t) => t.kind));

const v1 = await client.POST("/classify", { body: { text: "play the new album by the beatles, i love it" } });
check(v1.data !== undefined && Object.keys(v1.data.results).length > 0, "POST /classify");
const v1Batch = await client.POST("/classify/batch", { body: { inputs: [{ text: "hello" }, { text: "play some jazz" }] } });
check(v1Batch.data?.results.length === 2, "POST /classify/batch");

const seen = new Set<string>();
// Every task named, so that kinds outside the default selection (the embedding) and tasks served only when named answer too.
const named = (pairs: boolean) => tasks.data.tasks.filter((t) => (t.input === "pair") === pairs).map((t) => t.name);
for (const body of [
  { text: "play the new album by the beatles, i love it", tasks: named(false) },
  { text: "A man is playing a guitar.", textPair: "A person plays an instrument.", tasks: named(true) },
]) {
  const v2 = await client.POST("/v2/classify", { body });
  check(v2.data !== undefined, "POST /v2/classify");
  for (const answer of v2.data.results as Answer[]) {
    console.log(`  ${describe(answer)}`);
    seen.add(answer.kind);
  }
}
check([...kinds].every((k) => seen.has(k)), `every kind answered (${[...seen]} of ${[...kinds]})`);
const v2Batch = await client.POST("/v2/classify/batch", { body: { inputs: [{ text: "hello" }, { text: "play some jazz" }] } });
check(v2Batch.data?.inputs.length === 2, "POST /v2/classify/batch");

const invalid = await client.POST("/v2/classify", { body: { text: "" } });
check(invalid.response.status === 400 && invalid.error !== undefined, "an empty text is a 400");
// openapi-fetch types `error` as the union of the operation's problem bodies; `errors` tells the validation problem apart.
check("errors" in invalid.error && invalid.error.detail.startsWith("text:") && invalid.error.errors["text"] !== undefined, "the 400 typed: detail and errors");

const reload = await client.POST("/admin/reload");
check(reload.data !== undefined && reload.data.unchanged.length > 0, "POST /admin/reload");
console.log("typescript client: every check passed");
