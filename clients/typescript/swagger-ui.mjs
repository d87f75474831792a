// Browser test of Swagger UI (issue #26): Debian's chromium, headless, driven by puppeteer-core (no
// browser download). Loads /swagger, runs every request example of the classify operations through
// "Try it out" / "Execute" and checks each answer (200; the example named for a kind answers that
// kind; the out-of-scope example falls back), then uploads a head through the admin form's file
// part after "Authorize". Arguments: base address, admin key, a manifest entry and its head file.
import puppeteer from "puppeteer-core";
import { readFileSync } from "node:fs";

const [base, adminKey, entryPath, headPath] = process.argv.slice(2);
const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";
const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
let failures = 0;
const fail = (what) => { failures++; console.error(`FAIL ${what}`); };

try {
  const page = await browser.newPage();
  page.setDefaultTimeout(30_000);
  await page.goto(`${base}/swagger/index.html`, { waitUntil: "networkidle0" });
  await page.waitForSelector(".opblock");

  for (const [tag, operation] of [["Classify", "Classify"], ["Classify", "ClassifyBatch"], ["Classify", "ClassifyV2"], ["Classify", "ClassifyBatchV2"]]) {
    const block = `#operations-${tag}-${operation}`;
    await open(page, block);
    const names = await page.$$eval(`${block} .opblock-section-request-body .examples-select select option`, (o) => o.map((x) => x.value));
    if (names.length < 2) fail(`${operation}: request examples in Swagger UI (${names.length})`);
    for (const name of names) {
      await page.select(`${block} .opblock-section-request-body .examples-select select`, name);
      const { status, body } = await execute(page, block);
      const problem = judge(operation, name, status, body);
      if (problem) fail(`${operation} / ${name}: ${problem}`);
      else console.log(`  ok ${operation} / ${name}: ${status}`);
    }
  }

  await authorize(page, adminKey);
  const upload = "#operations-Admin-UploadTask";
  await open(page, upload);
  const entry = JSON.parse(readFileSync(entryPath, "utf8"));
  entry.name = "upload-swagger-ui";
  const form = `${upload} .opblock-section-request-body`;
  const file = await page.waitForSelector(`${form} input[type=file]`);
  await file.uploadFile(headPath);
  const manifest = await page.waitForSelector(`${form} tr[data-property-name=manifest] input[type=text]`);
  await manifest.click({ clickCount: 3 }); // select the placeholder value "string", replaced by what is typed
  await manifest.type(JSON.stringify(entry));
  const { status, body } = await execute(page, upload);
  if (status !== 200 || !body.includes('"added"')) fail(`UploadTask from the form: ${status} ${body.slice(0, 300)}`);
  else console.log(`  ok UploadTask (file part from the form): ${status}`);
} finally {
  await browser.close();
}

if (failures > 0) {
  console.error(`swagger ui: ${failures} failed`);
  process.exit(1);
}
console.log("swagger ui: every example answered as named");

/** Expands the operation and presses "Try it out". */
async function open(page, block) {
  await page.click(`${block} .opblock-summary-control`);
  await page.waitForSelector(`${block} .try-out__btn`);
  await page.click(`${block} .try-out__btn`);
  await page.waitForSelector(`${block} .execute`);
}

/** Presses "Execute" and reads the live response's status and body. */
async function execute(page, block) {
  const clear = await page.$(`${block} .btn-clear`);
  if (clear) await clear.click();
  await page.click(`${block} .execute`);
  await page.waitForSelector(`${block} .live-responses-table tbody .response .response-col_status`);
  return page.$eval(`${block} .live-responses-table tbody .response`, (row) => ({
    status: Number.parseInt(row.querySelector(".response-col_status")?.textContent ?? "0", 10),
    body: row.querySelector(".response-col_description pre")?.textContent ?? "",
  }));
}

/** What is wrong with an example's answer, or null. Example names say what they show (RequestExamples.cs). */
function judge(operation, name, status, body) {
  if (status !== 200) return `status ${status}: ${body.slice(0, 300)}`;
  const answer = JSON.parse(body);
  if (!answer.model) return "no model";
  const kind = /^(\w+): task (\S+)$/.exec(name);
  if (kind && operation.endsWith("V2")) {
    const result = answer.results.find((r) => r.task === kind[2]);
    if (result?.kind !== kind[1]) return `task ${kind[2]} did not answer as ${kind[1]}: ${body.slice(0, 300)}`;
  }
  if (name.startsWith("out of scope") && !body.includes('"fallback"')) return `did not fall back: ${body.slice(0, 300)}`;
  return null;
}

/** Enters the admin key in the Authorize dialog (the AdminApiKey scheme). */
async function authorize(page, key) {
  await page.click(".btn.authorize");
  const input = await page.waitForSelector(".auth-container input");
  await input.type(key);
  await page.click(".auth-container .btn.modal-btn.auth.authorize");
  await page.click(".btn-done, .close-modal");
}
