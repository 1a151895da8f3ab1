// Answers one review in the /inbox page like a reviewer, in headless Chromium.
// Usage: node inbox_answer.mjs BASE_URL TOKEN REVIEW_ID REVIEWER ANSWER_JSON [SCREENSHOT]
// ANSWER_JSON: {"option":"approve"} | {"text":"..."} | {"select":["id",...]} | {"fields":{"name":value,...}}
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [base, token, reviewId, reviewer, answerJson, screenshot] = process.argv.slice(2);
const answer = JSON.parse(answerJson);
const profile = mkdtempSync(join(tmpdir(), "facio-chromium-"));
// A fresh profile per run: nothing carries over between tests.
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  timeout: 120000,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
});
try {
  const page = await browser.newPage();
  await page.goto(`${base}/inbox`);
  await page.fill("#reviewer", reviewer);
  await page.dispatchEvent("#reviewer", "change");
  await page.fill("#token", token);
  await page.dispatchEvent("#token", "change");
  const item = page.locator(`#pending [data-review="${reviewId}"]`);
  await item.waitFor({ timeout: 60000 });
  await item.click();
  await page.locator("#review-status").waitFor({ timeout: 60000 });
  const context = await page.locator("#detail").innerText();
  if (answer.option) {
    await page.locator(`button[data-option="${answer.option}"]`).click();
  } else {
    if (answer.text !== undefined) await page.fill("#text", answer.text);
    for (const id of answer.select || []) await page.check(`input[name=selection][value="${id}"]`);
    for (const [name, value] of Object.entries(answer.fields || {})) {
      if (typeof value === "boolean") await (value ? page.check(`#field-${name}`) : page.uncheck(`#field-${name}`));
      else if (await page.locator(`select#field-${name}`).count()) await page.selectOption(`#field-${name}`, String(value));
      else await page.fill(`#field-${name}`, String(value));
    }
    await page.locator("#answer .actions button.primary").click();
  }
  await page.locator("#review-status", { hasText: "decided" }).waitFor({ timeout: 60000 });
  await page.locator(`#recent [data-review="${reviewId}"]`).waitFor({ timeout: 60000 });
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ answered: true, context }));
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
