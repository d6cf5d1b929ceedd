// The import page while a batch runs: poll its progress, reload the page when it has finished.
function pollImport(box) {
  const bar = box.querySelector("progress");
  const text = box.querySelector(".import-progress-text");
  const tick = async () => {
    try {
      const response = await fetch(box.dataset.importPoll, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.ok) {
        const batch = await response.json();
        bar.max = batch.progress.total || 1;
        bar.value = batch.progress.done;
        text.textContent = `${batch.progress.done} / ${batch.progress.total}`;
        if (batch.finished_at) { window.location.reload(); return; }
      }
    } catch (error) {
      // the server is busy or restarting: try again at the next tick
    }
    window.setTimeout(tick, 1000);
  };
  window.setTimeout(tick, 500);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-import-poll]").forEach(pollImport);
});
