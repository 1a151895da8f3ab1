// Opening and answering one review in the inbox page, with real clicks and typing.

/// Clicks the review in the pending list and waits until its detail shows.
export async function openReview(page, reviewId) {
  const item = page.locator(`#pending [data-review="${reviewId}"]`);
  await item.waitFor({ timeout: 60000 });
  await item.click();
  await page.locator("#review-status").waitFor({ timeout: 60000 });
}

/// Answers the open review: {"option": id} clicks that button, {"key": "a"} presses
/// the shortcut, else the text, selection and form fields are filled in and submitted.
export async function answer(page, answer) {
  if (answer.edit) {
    await page.locator("#edit summary").click();
    await page.fill("#edit-args", JSON.stringify(answer.edit));
    await page.locator("#approve-edited").click();
  } else if (answer.key) {
    await page.keyboard.press(answer.key);
  } else if (answer.option) {
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
}
