// The transformation editor: CodeMirror with JSON highlighting and live located problems.
// The text is checked by the server (the engine's own validation), debounced by the lint
// addon; each problem is marked where it is and listed below the editor. Without this script
// the page is a plain form.
(function () {
  "use strict";

  var area = document.querySelector("textarea[data-editor]");
  if (!area || !window.CodeMirror) { return; }

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  var list = document.getElementById("problems");
  var count = document.getElementById("problem-count");

  function show(problems) {
    count.textContent = String(problems.length);
    list.textContent = "";
    if (!problems.length) {
      var ok = document.createElement("p");
      ok.className = "ok-text";
      ok.textContent = "No problem: this document can be saved.";
      list.appendChild(ok);
      return;
    }
    var ul = document.createElement("ul");
    ul.className = "problems";
    problems.forEach(function (p) {
      var li = document.createElement("li");
      if (p.line) {
        var where = document.createElement("a");
        where.href = "#document";
        where.className = "where";
        where.textContent = "line " + p.line + ", column " + p.column;
        where.addEventListener("click", function (event) {
          event.preventDefault();
          editor.focus();
          editor.setCursor({ line: p.line - 1, ch: p.column - 1 });
        });
        li.appendChild(where);
        li.appendChild(document.createTextNode(": "));
      }
      li.appendChild(document.createTextNode(p.message));
      ul.appendChild(li);
    });
    list.appendChild(ul);
  }

  var pending = null;

  function check(text, update) {
    if (pending) { pending.abort(); }
    var request = new XMLHttpRequest();
    pending = request;
    request.open("POST", area.getAttribute("data-check"));
    request.setRequestHeader("Content-Type", "application/json");
    request.setRequestHeader("X-CSRF-Token", csrf());
    request.onload = function () {
      pending = null;
      if (request.status !== 200) { return; }
      var problems = JSON.parse(request.responseText).problems;
      show(problems);
      update(problems.filter(function (p) { return p.line; }).map(function (p) {
        return {
          from: CodeMirror.Pos(p.line - 1, p.column - 1),
          to: CodeMirror.Pos(p.endLine - 1, Math.max(p.endColumn - 1, p.column)),
          message: p.message,
          severity: "error"
        };
      }));
    };
    request.send(JSON.stringify({ text: text }));
  }

  var editor = CodeMirror.fromTextArea(area, {
    mode: { name: "javascript", json: true },
    lineNumbers: true,
    matchBrackets: true,
    readOnly: area.hasAttribute("readonly"),
    gutters: ["CodeMirror-lint-markers", "CodeMirror-linenumbers"],
    lint: { getAnnotations: check, async: true, delay: 400 },
    screenReaderLabel: "Document",
    extraKeys: { "Tab": false, "Shift-Tab": false }
  });
})();
