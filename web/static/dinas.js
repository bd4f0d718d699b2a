// Live run progress: poll a small JSON endpoint; the page works without this script.
(function () {
  if (!document.querySelector('[data-run]')) return;
  function set(row, sel, text) { var el = row.querySelector(sel); if (el) el.textContent = text; }
  function tick() {
    fetch('/dinas/progress.json', {credentials: 'same-origin'})
      .then(function (r) { return r.ok ? r.json() : {runs: []}; })
      .then(function (d) {
        d.runs.forEach(function (run) {
          var row = document.querySelector('[data-run="' + run.id + '"]');
          if (!row) return;
          set(row, '[data-field=status]', run.status_label);
          set(row, '[data-field=progress]', run.done + ' / ' + run.total);
          set(row, '[data-field=counts]', run.counts_label);
          set(row, '[data-field=waiting]', run.waiting_label);
          Object.keys(run.engagement).forEach(function (k) { set(row, '[data-event=' + k + ']', run.engagement[k]); });
        });
      }).catch(function () {});
  }
  setInterval(tick, 10000);
})();
