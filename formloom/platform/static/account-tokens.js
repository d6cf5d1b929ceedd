// The API tokens page: copy a new token's secret to the clipboard (it is shown only once).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    const input = document.getElementById(button.dataset.copy);
    if (!input) return;
    input.addEventListener("focus", () => input.select());
    button.addEventListener("click", async () => {
      input.select();
      try {
        await navigator.clipboard.writeText(input.value);
      } catch (error) {
        document.execCommand("copy");  // clipboard API refused (plain http): the selection still copies
      }
      button.textContent = button.dataset.copied;
    });
  });
});
