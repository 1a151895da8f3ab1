// Answers one review in the /inbox page like a reviewer, in headless Chromium.
// Usage: node inbox_answer.mjs BASE_URL TOKEN REVIEW_ID REVIEWER ANSWER_JSON [SCREENSHOT]
// ANSWER_JSON: {"option":"approve"} | {"text":"..."} | {"select":["id",...]} | {"fields":{"name":value,...}}
import { answer, openReview } from "./review.mjs";
import { inboxPage, signIn, withBrowser } from "./browser.mjs";

const [base, token, reviewId, reviewer, answerJson, screenshot] = process.argv.slice(2);
await withBrowser(async (browser) => {
  const { page } = await inboxPage(browser, base);
  await page.goto(`${base}/inbox`);
  await signIn(page, reviewer, token);
  await openReview(page, reviewId);
  const context = await page.locator("#detail").innerText();
  await answer(page, JSON.parse(answerJson));
  await page.locator("#review-status", { hasText: "decided" }).waitFor({ timeout: 60000 });
  await page.locator(`#recent [data-review="${reviewId}"]`).waitFor({ timeout: 60000 });
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ answered: true, context }));
});
