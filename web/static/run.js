// One run's progress: poll its JSON; the page is complete without this script.
(function () {
  var box = document.querySelector('[data-run-page]');
  if (!box) return;
  function set(name, text) { var el = box.querySelector('[data-field=' + name + ']'); if (el) el.textContent = text; }
  function tick() {
    fetch(box.getAttribute('data-run-page'), {credentials: 'same-origin'})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        if (!d) return;
        ['status_label', 'sent', 'held', 'failed', 'skipped', 'stopped_at'].forEach(function (k) { set(k, d[k]); });
        set('progress', d.done + ' / ' + d.total);
        d.messages.forEach(function (m) {
          var row = box.querySelector('[data-message="' + m.channel + '-' + m.variant + '"]');
          if (row) { row.querySelector('[data-m=progress]').textContent = m.done + ' / ' + m.total; row.querySelector('[data-m=label]').textContent = m.label; }
        });
      }).catch(function () {});
  }
  setInterval(tick, 5000);
})();
