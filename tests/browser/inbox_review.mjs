// Reads one review in the /inbox page as a reviewer would, reports what the page
// shows, takes screenshots (desktop and phone width) and answers it.
// Usage: node inbox_review.mjs BASE_URL TOKEN REVIEW_ID PLAN_JSON
// PLAN_JSON: {"name": "approval", "reviewer": "ivy", "answer": {...as inbox_answer.mjs, or {"key":"a"}},
//   "screenshots": DIR, "once": "text counted in the detail", "guard": true (type the
//   answer's key into the comment first: it must not decide), "help": true (open and
//   close the shortcut help), "phoneAnswer": true (answer at phone width)}
import { join } from "node:path";
import { DESKTOP, inboxPage, phoneWidth, signIn, storage, withBrowser } from "./browser.mjs";
import { answer, openReview } from "./review.mjs";

const [base, token, reviewId, planJson] = process.argv.slice(2);
const plan = JSON.parse(planJson);
const report = await withBrowser(async (browser) => {
  const { page, seen } = await inboxPage(browser, base);
  const report = { screenshots: [] };
  const shot = async (suffix) => {
    const path = join(plan.screenshots, `${plan.name}${suffix}.png`);
    await page.screenshot({ path, fullPage: true });
    report.screenshots.push(path);
  };
  await page.goto(`${base}/inbox`);
  await signIn(page, plan.reviewer, token);
  await openReview(page, reviewId);
  await page.mouse.move(0, 0); // no hover highlight in the screenshots

  const detail = page.locator("#detail");
  report.detail = await detail.innerText();
  // Counted below the title: the title may name the call's subject, the body shows
  // the arguments once.
  const body = report.detail.slice((await page.locator("#detail h2").innerText()).length);
  if (plan.once) report.once = body.split(plan.once).length - 1;
  report.headerHeight = await page.evaluate(() => document.querySelector("header").getBoundingClientRect().height);
  report.description = await page.evaluate(() => {
    const box = document.querySelector("#description");
    if (!box) return null;
    const count = (selector) => box.querySelectorAll(selector).length;
    return {
      text: box.innerText,
      tags: Object.fromEntries(["h3", "h4", "h5", "ul", "ol", "li", "pre", "code", "strong", "em", "a", "blockquote", "img", "script", "iframe", "[onerror]", "[onclick]"].map((t) => [t, count(t)])),
      links: [...box.querySelectorAll("a")].map((a) => ({ href: a.getAttribute("href"), text: a.textContent })),
      unsafe: [...box.querySelectorAll(".unsafe-link")].map((s) => s.textContent),
      fences: box.innerText.includes("```"),
    };
  });
  report.arguments = await page.evaluate(() => {
    const pre = document.querySelector("#arguments");
    return pre && { text: pre.innerText, keys: pre.querySelectorAll(".k").length, strings: pre.querySelectorAll(".s").length };
  });
  report.reason = await page.locator("#reason").count() ? await page.locator("#reason").innerText() : null;
  report.risk = await page.locator("#risk").count() ? await page.locator("#risk").innerText() : null;
  report.steps = await page.evaluate(() => [...document.querySelectorAll("#steps li")].map((li) => ({
    role: li.querySelector(".role").textContent,
    text: li.querySelector(".step-text") ? li.querySelector(".step-text").textContent : null,
    calls: [...li.querySelectorAll(".step-call")].map((c) => c.textContent) })));
  const countdown = await page.locator("#countdown").innerText();
  await page.waitForTimeout(2100);
  report.countdown = [countdown, await page.locator("#countdown").innerText()];
  report.storage = await storage(page, token);

  if (plan.unsafeClick) {
    // Clicking a link the page refused must do nothing.
    for (const span of await page.locator("#description .unsafe-link").all()) await span.click();
    await page.waitForTimeout(300);
  }
  report.injected = await page.evaluate(() => ({ xss: window.__xss === undefined ? null : window.__xss, title: document.title, url: location.pathname }));

  if (plan.help) {
    await page.keyboard.press("?");
    const shown = await page.locator("#help").isVisible();
    await shot("-help");
    await page.keyboard.press("Escape");
    report.help = { shown, closed: !(await page.locator("#help").isVisible()) };
  }
  await shot("");
  report.phoneWidth = await phoneWidth(page);
  await shot("-phone");
  if (!plan.phoneAnswer) await page.setViewportSize(DESKTOP);

  if (plan.guard) {
    // The shortcut typed into a field is text, not a decision.
    await page.locator("#comment").click();
    await page.keyboard.type(plan.answer.key);
    await page.waitForTimeout(500);
    report.guard = { status: await page.locator("#review-status").innerText(), comment: await page.inputValue("#comment") };
    await page.fill("#comment", "");
    await page.locator("#detail h2").click(); // leave the field, as a reviewer would
  }
  await answer(page, plan.answer);
  await page.locator("#review-status:not(.pending)").waitFor({ timeout: 60000 });
  report.status = await page.locator("#review-status").innerText();
  report.decision = await page.locator("#decision").innerText();
  await page.locator(`#recent [data-review="${reviewId}"]`).waitFor({ timeout: 60000 });
  if (plan.phoneAnswer) report.phoneWidthAfter = await page.evaluate(() => document.scrollingElement.scrollWidth);
  await shot("-answered");
  report.seen = seen;
  return report;
});
console.log(JSON.stringify(report));
