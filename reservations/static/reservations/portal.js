// The portal works without JavaScript (every dialog is also a page). With it, the
// cancel dialogs open in a native <dialog>, "select all" works, and the recurrence
// fields show only when the reservation repeats.
(function () {
  "use strict";
  var dialog, opener;

  function showDialog(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var content = doc.getElementById("dialog-content");
    if (!content) return false;
    dialog = dialog || document.getElementById("portal-dialog");
    var body = dialog.querySelector(".dialog-body");
    body.replaceChildren(document.importNode(content, true));
    dialog.setAttribute("data-kind", content.getAttribute("data-dialog-kind") || "");
    dialog.showModal();
    var first = body.querySelector("input:not([type=hidden]), button, a");
    if (first) first.focus();
    return true;
  }

  function load(url, options) {
    return fetch(url, Object.assign({ credentials: "same-origin", headers: { "X-Requested-With": "fetch" } }, options || {}))
      .then(function (resp) {
        if (resp.redirected) { window.location.href = resp.url; return; }
        return resp.text().then(function (text) { if (!showDialog(text)) window.location.href = url; });
      })
      .catch(function () { window.location.href = url; });
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-dialog]");
    if (link && typeof HTMLDialogElement === "function") {
      event.preventDefault();
      opener = link;
      load(link.href);
      return;
    }
    var close = event.target.closest("#portal-dialog [data-close]");
    if (close) {
      event.preventDefault();
      document.getElementById("portal-dialog").close();
    }
  });

  document.addEventListener("submit", function (event) {
    var submitter = event.submitter;
    if (!submitter || !submitter.hasAttribute("data-dialog") || typeof HTMLDialogElement !== "function") return;
    event.preventDefault();
    opener = submitter;
    load(event.target.action, { method: "POST", body: new FormData(event.target) });
  });

  document.addEventListener("DOMContentLoaded", function () {
    var d = document.getElementById("portal-dialog");
    if (d) d.addEventListener("close", function () { if (opener) opener.focus(); });

    document.querySelectorAll("[data-select-all]").forEach(function (all) {
      var name = all.getAttribute("data-select-all");
      var boxes = function () { return document.querySelectorAll("input[name='" + name + "']:not(:disabled)"); };
      all.addEventListener("change", function () { boxes().forEach(function (b) { b.checked = all.checked; }); });
    });

    var frequency = document.getElementById("id_frequency");
    if (frequency) {
      var repeatOnly = document.querySelectorAll(".repeat-only, .field:has(#id_interval)");
      var sync = function () { repeatOnly.forEach(function (el) { el.hidden = !frequency.value; }); };
      frequency.addEventListener("change", sync);
      sync();
    }
  });
})();
