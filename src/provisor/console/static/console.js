// The console's own script: CSRF header on htmx requests, confirmations, small helpers.
// No inline scripts anywhere (the Content-Security-Policy forbids them): behaviour is bound here
// to data-* attributes.
(function () {
  "use strict";

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Every htmx request carries the session's CSRF token.
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrf();
  });

  // A form or button with data-confirm asks first (deletions, rewrites).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  }, true);
  document.addEventListener("htmx:confirm", function (event) {
    var question = event.detail.elt.getAttribute("data-confirm");
    if (question && event.detail.elt.tagName !== "FORM") {
      event.preventDefault();
      if (window.confirm(question)) { event.detail.issueRequest(true); }
    }
  });

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-back]");
    if (target) { event.preventDefault(); window.history.back(); return; }
    var copy = event.target.closest("[data-copy]");
    if (copy) {
      event.preventDefault();
      var source = document.getElementById(copy.getAttribute("data-copy"));
      if (source && navigator.clipboard) {
        navigator.clipboard.writeText(source.value || source.textContent).then(function () {
          copy.textContent = "Copied";
        });
      }
    }
  });

  // Errors of htmx requests are shown, not swallowed.
  document.addEventListener("htmx:responseError", function (event) {
    var box = document.getElementById("htmx-error");
    if (!box) {
      box = document.createElement("p");
      box.id = "htmx-error";
      box.className = "error";
      box.setAttribute("role", "alert");
      document.getElementById("main").prepend(box);
    }
    var xhr = event.detail.xhr;
    box.textContent = "The server answered " + xhr.status + ": " +
      (xhr.responseText && xhr.responseText.length < 500 && xhr.getResponseHeader("content-type") &&
       xhr.getResponseHeader("content-type").indexOf("text/plain") === 0 ? xhr.responseText : "reload the page and try again.");
  });
})();
