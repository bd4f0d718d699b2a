// Campaign studio: a light YAML editor (textarea + line numbers + highlight overlay),
// live validation by the server (the same checks as `umkm campaign validate`) and the
// preview. No libraries, no CDN: it must work on the office network offline.
(function () {
  "use strict";
  var root = document.getElementById("studio");
  if (!root) { return; }
  var area = document.getElementById("yaml");
  var gutter = document.getElementById("gutter");
  var highlight = document.getElementById("highlight");
  var statusLine = document.getElementById("check-status");
  var problemList = document.getElementById("problems");
  var csrf = document.getElementById("csrf").value;
  var timer = null;
  var sequence = 0;
  var problems = [];

  function escapeHtml(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;");
  }

  // One line of YAML, coloured: comments, keys, strings, literals, Jinja. Each piece of
  // the raw line is escaped on its own, so markup is never matched as YAML.
  var TOKEN = /("(?:[^"\\]|\\.)*"?|'[^']*'?|\{\{.*?\}\}|\b(?:true|false|null)\b|-?\b\d[\d.:-]*)/g;
  var KEY = /^(\s*(?:-\s+)?)([A-Za-z_][\w.-]*)(:)(?=\s|$)/;

  function span(cls, text) { return '<span class="' + cls + '">' + escapeHtml(text) + "</span>"; }

  function colourLine(line) {
    var comment = "";
    var hash = line.search(/(^|\s)#/);
    if (hash >= 0) {
      comment = span("y-comment", line.slice(hash));
      line = line.slice(0, hash);
    }
    var html = "";
    var key = KEY.exec(line);
    if (key) {
      html = escapeHtml(key[1]) + span("y-key", key[2]) + ":";
      line = line.slice(key[0].length);
    }
    var last = 0;
    line.replace(TOKEN, function (token, _group, offset) {
      html += escapeHtml(line.slice(last, offset));
      var first = token.charAt(0);
      html += span(first === '"' || first === "'" ? "y-str" : (first === "{" ? "y-jinja" : "y-lit"), token);
      last = offset + token.length;
      return token;
    });
    return html + escapeHtml(line.slice(last)) + comment;
  }

  function render() {
    var lines = area.value.split("\n");
    var byLine = {};
    problems.forEach(function (p) { (byLine[p.line] = byLine[p.line] || []).push(p); });
    var numbers = [];
    var coloured = [];
    lines.forEach(function (line, i) {
      var n = i + 1;
      var bad = byLine[n];
      numbers.push(bad ? '<span class="bad" title="' + escapeHtml(bad[0].message) + '">' + n + "</span>" : String(n));
      coloured.push(bad ? '<span class="y-error" data-line="' + n + '">' + colourLine(line) + " </span>" : colourLine(line));
    });
    gutter.innerHTML = numbers.join("\n") + "\n";
    highlight.innerHTML = coloured.join("\n") + "\n";
    syncScroll();
  }

  function syncScroll() {
    highlight.scrollTop = area.scrollTop;
    highlight.scrollLeft = area.scrollLeft;
    gutter.scrollTop = area.scrollTop;
  }

  function showProblems(list) {
    problems = list;
    problemList.innerHTML = "";
    list.forEach(function (p) {
      var item = document.createElement("li");
      item.setAttribute("data-line", p.line);
      item.setAttribute("data-column", p.column);
      var link = document.createElement("a");
      link.href = "#yaml";
      link.textContent = p.line + ":" + p.column;
      link.addEventListener("click", function (event) { event.preventDefault(); goTo(p.line, p.column); });
      item.appendChild(link);
      item.appendChild(document.createTextNode(" " + p.message));
      problemList.appendChild(item);
    });
    render();
  }

  function goTo(line, column) {
    var lines = area.value.split("\n");
    var offset = 0;
    for (var i = 0; i < line - 1 && i < lines.length; i++) { offset += lines[i].length + 1; }
    area.focus();
    area.setSelectionRange(offset + column - 1, offset + column - 1);
  }

  function post(url, fields) {
    var body = new URLSearchParams();
    body.set("csrf_token", csrf);
    Object.keys(fields).forEach(function (k) { body.set(k, fields[k]); });
    return fetch(url, {method: "POST", body: body, credentials: "same-origin",
                       headers: {"Accept": "application/json"}})
      .then(function (r) {
        return r.json().then(function (data) { data.httpStatus = r.status; return data; });
      });
  }

  function fill(id, text) { document.getElementById(id).textContent = text; }

  function showPlan(plan) {
    fill("plan-audience", plan ? String(plan.audience) : "–");
    fill("plan-next", plan ? plan.next_send : "–");
    fill("plan-product-count", plan ? String(plan.product_count) : "–");
    var list = document.getElementById("plan-products");
    list.innerHTML = "";
    (plan ? plan.products : []).forEach(function (p) {
      var li = document.createElement("li");
      li.textContent = p.name + " — " + p.price + " (" + p.business + ")";
      list.appendChild(li);
    });
  }

  function check() {
    var mine = ++sequence;
    statusLine.textContent = root.dataset.checking;
    post(root.dataset.check, {yaml: area.value}).then(function (data) {
      if (mine !== sequence) { return; }
      if (data.httpStatus !== 200) {
        statusLine.textContent = typeof data.detail === "string" ? data.detail : "";
        statusLine.className = "fail";
        return;
      }
      showProblems(data.errors || []);
      statusLine.textContent = data.valid ? root.dataset.valid : "";
      statusLine.className = data.valid ? "ok" : "fail";
      showPlan(data.valid ? data.plan : null);
    }).catch(function () { statusLine.textContent = root.dataset.offline; });
  }

  function changed() {
    render();
    clearTimeout(timer);
    timer = setTimeout(check, 400);
  }

  function showPreview(data) {
    var box = document.getElementById("preview");
    var error = document.getElementById("preview-error");
    box.hidden = false;
    error.hidden = data.ok;
    if (!data.ok) {
      error.textContent = data.error || "";
      if (data.errors) { showProblems(data.errors); }
      return;
    }
    var picker = document.getElementById("recipient");
    var chosen = picker.value;
    picker.innerHTML = "";
    var sample = document.createElement("option");
    sample.value = "";
    sample.textContent = root.dataset.sample;
    picker.appendChild(sample);
    data.recipients.forEach(function (r) {
      var o = document.createElement("option");
      o.value = String(r.id);
      o.textContent = r.name;
      picker.appendChild(o);
    });
    picker.value = chosen;
    var email = data.emails[0];
    document.getElementById("preview-email").hidden = !email;
    if (email) {
      fill("pv-subject", email.subject);
      fill("pv-preheader", email.preheader);
      fill("pv-text", email.text);
      document.getElementById("pv-phone").srcdoc = email.html;
      document.getElementById("pv-desktop").srcdoc = email.html;
    }
    var posts = document.getElementById("pv-posts");
    posts.innerHTML = "";
    data.posts.forEach(function (p) {
      var card = document.createElement("article");
      card.className = "post post-" + p.platform;
      card.setAttribute("data-platform", p.platform);
      var head = document.createElement("h3");
      head.textContent = p.platform;
      var text = document.createElement("pre");
      text.className = "plain";
      text.tabIndex = 0;  // a long post scrolls: keyboard users reach it (axe)
      text.textContent = p.text;
      var count = document.createElement("p");
      count.className = p.too_long ? "fail" : "";
      count.textContent = root.dataset.chars.replace("{n}", p.length).replace("{limit}", p.limit === null ? "–" : p.limit) +
        (p.too_long ? " " + root.dataset.tooLong : "");
      card.appendChild(head); card.appendChild(text); card.appendChild(count);
      posts.appendChild(card);
    });
    document.getElementById("pv-kit-box").hidden = !data.share_kit;
    fill("pv-kit", data.share_kit || "");
  }

  function preview() {
    post(root.dataset.preview, {yaml: area.value, penerima: document.getElementById("recipient").value})
      .then(function (data) {
        if (data.httpStatus !== 200) { data = {ok: false, error: data.detail}; }
        showPreview(data);
      }).catch(function () { statusLine.textContent = root.dataset.offline; });
  }

  function save() {
    var saveStatus = document.getElementById("save-status");
    post(root.dataset.save, {yaml: area.value}).then(function (data) {
      if (data.httpStatus !== 200) { saveStatus.textContent = data.detail || ""; return; }
      saveStatus.textContent = data.ok ? data.message : data.error;
      saveStatus.className = data.ok ? "ok" : "fail";
      if (!data.ok) { showProblems(data.errors || []); return; }
      var link = document.getElementById("save-link");
      link.href = data.url;
      link.hidden = false;
    }).catch(function () { saveStatus.textContent = root.dataset.offline; });
  }

  function testSend() {
    var trialStatus = document.getElementById("trial-status");
    post(root.dataset.trial, {yaml: area.value, penerima: document.getElementById("recipient").value,
                              kanal: document.getElementById("trial-channel").value})
      .then(function (data) {
        trialStatus.textContent = data.ok ? data.message : (data.error || data.detail || "");
        trialStatus.className = data.ok ? "ok" : "fail";
        if (!data.ok && data.errors) { showProblems(data.errors); }
      }).catch(function () { trialStatus.textContent = root.dataset.offline; });
  }

  area.addEventListener("input", changed);
  area.addEventListener("scroll", syncScroll);
  area.addEventListener("keydown", function (event) {
    if (event.key === "Tab" && !event.shiftKey && !event.ctrlKey && !event.altKey) {
      event.preventDefault();  // two spaces, as YAML indents; Shift+Tab still leaves
      var start = area.selectionStart;
      area.setRangeText("  ", start, area.selectionEnd, "end");
      changed();
    }
  });
  document.getElementById("preview-button").addEventListener("click", preview);
  document.getElementById("save-button").addEventListener("click", save);
  document.getElementById("trial-button").addEventListener("click", testSend);
  render();
  check();
})();
