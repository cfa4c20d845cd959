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

    setUpCopyButtons();
    fillAttendeeAvailability();
    setUpAvailabilityCheck();

    var frequency = document.getElementById("id_frequency");
    if (frequency) {
      var repeatOnly = document.querySelectorAll(".repeat-only, .field:has(#id_interval)");
      var sync = function () { repeatOnly.forEach(function (el) { el.hidden = !frequency.value; }); };
      frequency.addEventListener("change", sync);
      sync();
    }
  });

  // --- calendar feed: copy the link -------------------------------------------------------
  function setUpCopyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      var input = document.getElementById(button.getAttribute("data-copy"));
      var status = document.getElementById("feed-copy-status");
      if (!input) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        var done = function () { if (status) status.textContent = "Link copied."; };
        input.select();
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(input.value).then(done, function () { if (status) status.textContent = "Press Ctrl+C (⌘C) to copy the selected link."; });
        } else if (document.execCommand && document.execCommand("copy")) {
          done();
        } else if (status) {
          status.textContent = "Press Ctrl+C (⌘C) to copy the selected link.";
        }
      });
    });
  }

  var AVAILABILITY_WORDS = { free: "Free", tentative: "Tentative", busy: "Busy", oof: "Out of office", workingElsewhere: "Working elsewhere", unknown: "Unknown" };

  function availabilityWord(value) { return AVAILABILITY_WORDS[value] || AVAILABILITY_WORDS.unknown; }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (body) {
        if (!resp.ok) throw new Error(body.message || ("HTTP " + resp.status));
        return body;
      });
    });
  }

  // --- reservation detail: attendees' free/busy from the attendees API -----------------------
  function fillAttendeeAvailability() {
    var table = document.getElementById("attendee-table");
    if (!table || !table.getAttribute("data-attendees-url")) return;
    var status = document.getElementById("availability-status");
    table.querySelectorAll("[data-availability]").forEach(function (cell) { cell.hidden = false; });
    if (status) status.textContent = "Checking attendees' availability in Outlook…";
    getJSON(table.getAttribute("data-attendees-url")).then(function (body) {
      var known = 0;
      (body.attendees || []).forEach(function (attendee) {
        var row = table.querySelector("tr[data-email='" + CSS.escape((attendee.email || "").toLowerCase()) + "']");
        var span = row && row.querySelector(".availability");
        if (!span) return;
        span.textContent = availabilityWord(attendee.availability);
        span.className = "availability availability-" + (AVAILABILITY_WORDS[attendee.availability] ? attendee.availability : "unknown");
        if (attendee.availability !== "unknown") known += 1;
      });
      if (status) status.textContent = known ? "Availability during this reservation, from Outlook." : "Availability is unknown (Outlook doesn't share it with the portal).";
    }).catch(function (error) {
      if (status) status.textContent = "Couldn't check availability: " + error.message;
    });
  }

  // --- booking form: "check attendees' availability" ----------------------------------------
  // The form's date and times are in the building's time zone (data-timezone); the API wants
  // aware instants, so they are converted here with Intl (no library).
  function zoneOffsetMinutes(utcMillis, timeZone) {
    var parts = new Intl.DateTimeFormat("en-US", { timeZone: timeZone, timeZoneName: "longOffset" }).formatToParts(new Date(utcMillis));
    var name = (parts.find(function (p) { return p.type === "timeZoneName"; }) || {}).value || "GMT";
    var m = /GMT([+-])(\d{1,2})(?::(\d{2}))?/.exec(name);
    if (!m) return 0;
    return (m[1] === "-" ? -1 : 1) * (parseInt(m[2], 10) * 60 + parseInt(m[3] || "0", 10));
  }

  function zonedToISO(date, time, timeZone) {
    var d = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date), t = /^(\d{1,2}):(\d{2})/.exec(time);
    if (!d || !t) return null;
    var naive = Date.UTC(+d[1], +d[2] - 1, +d[3], +t[1], +t[2]);
    var guess = naive - zoneOffsetMinutes(naive, timeZone) * 60000;
    return new Date(naive - zoneOffsetMinutes(guess, timeZone) * 60000).toISOString();
  }

  function setUpAvailabilityCheck() {
    var button = document.getElementById("check-availability");
    if (!button) return;
    var form = button.form, out = document.getElementById("availability-result");
    var status = document.getElementById("availability-check-status");
    button.hidden = false;
    button.addEventListener("click", function () {
      // As the form reads them: separated by commas, semicolons, new lines or spaces; "Name <email>" too.
      var emails = [];
      (form.elements.attendees.value || "").split(/[,;\n]+/).forEach(function (chunk) {
        var angle = /<([^>]+)>/.exec(chunk);
        if (angle) emails.push(angle[1].trim());
        else emails.push.apply(emails, chunk.trim().split(/\s+/).filter(Boolean));
      });
      var tz = button.getAttribute("data-timezone");
      var start = zonedToISO(form.elements.date.value, form.elements.start_time.value, tz);
      var end = zonedToISO(form.elements.date.value, form.elements.end_time.value, tz);
      out.replaceChildren();
      if (!emails.length) { status.textContent = "Add attendees first (one email address per line)."; return; }
      if (!start || !end) { status.textContent = "Choose the date and times first."; return; }
      var query = new URLSearchParams({ emails: emails.join(","), start: start, end: end });
      status.textContent = "Checking availability…";
      button.disabled = true;
      getJSON(button.getAttribute("data-url") + "?" + query.toString()).then(function (body) {
        var known = 0;
        (body.schedules || []).forEach(function (s) {
          var li = document.createElement("li"), who = document.createElement("span"), what = document.createElement("span");
          who.textContent = s.email;
          what.textContent = availabilityWord(s.availability);
          what.className = "availability availability-" + (AVAILABILITY_WORDS[s.availability] ? s.availability : "unknown");
          li.append(who, what);
          out.append(li);
          if (s.availability !== "unknown") known += 1;
        });
        status.textContent = known ? "Availability at the chosen time:" : "Availability is unknown (Outlook doesn't share it with the portal).";
      }).catch(function (error) {
        status.textContent = "Couldn't check availability: " + error.message;
      }).finally(function () { button.disabled = false; });
    });
  }
})();
