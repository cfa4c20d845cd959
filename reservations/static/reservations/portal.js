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
    setUpLiveStatus();
    // On a phone the finder's rarer filters fold away (unless in use), so results show on the first screen.
    var more = document.querySelector("details.more-filters");
    if (more && !more.hasAttribute("data-in-use") && window.matchMedia("(max-width: 600px)").matches) more.open = false;
    setUpCancelSelected();
    fillAttendeeAvailability();
    setUpAvailabilityCheck();
    setUpGrids();
    setUpPeoplePicker();

    var frequency = document.getElementById("id_frequency");
    if (frequency) {
      // The interval's own field only: ".field:has(#id_interval)" also matched the
      // recurrence fieldset (class "field") and hid the whole "Repeat" section.
      var interval = document.getElementById("id_interval");
      var repeatOnly = Array.prototype.slice.call(document.querySelectorAll(".repeat-only"));
      if (interval && interval.closest("div.field")) repeatOnly.push(interval.closest("div.field"));
      var weekdays = document.getElementById("weekdays");
      var monthWeekday = document.getElementById("month-weekday");
      var sync = function () {
        repeatOnly.forEach(function (el) { el.hidden = !frequency.value; });
        if (weekdays) weekdays.hidden = frequency.value !== "weekly";
        if (monthWeekday) monthWeekday.hidden = frequency.value !== "monthly_weekday";
      };
      frequency.addEventListener("change", sync);
      sync();
    }
  });

  // --- live status: "my reservations" and the detail page follow the room's answer ----------
  // Short polls of /my/status/ every 2 s while one of the page's reservations is still moving
  // (awaiting the room, or being sent to Outlook); stops when none is, or after 10 minutes.
  var MOVING_SYNC = "pending";
  function setUpLiveStatus() {
    var cells = document.querySelectorAll("[data-live][data-rsv]");
    var note = document.getElementById("live-status-note");
    var source = document.querySelector("[data-status-url]");
    if (!cells.length || !source) return;
    var url = source.getAttribute("data-status-url");
    var detail = !!document.querySelector("[data-live][data-detail]");
    var ids = [];
    cells.forEach(function (cell) { var id = cell.getAttribute("data-rsv"); if (ids.indexOf(id) < 0) ids.push(id); });
    var moving = function () {
      return Array.prototype.some.call(document.querySelectorAll("[data-live=state][data-rsv]"), function (cell) {
        var sync = document.querySelector("[data-live=sync][data-rsv='" + cell.getAttribute("data-rsv") + "']");
        return cell.querySelector(".state-awaiting_confirmation") || (sync && sync.querySelector(".sync-pending"));
      });
    };
    var deadline = Date.now() + 10 * 60 * 1000;
    var tick = function () {
      if (!moving() || Date.now() > deadline) return;
      var query = new URLSearchParams({ ids: ids.join(",") });
      if (detail) query.set("detail", "1");
      getJSON(url + "?" + query.toString()).then(function (body) {
        (body.reservations || []).forEach(function (r) {
          var stateCell = document.querySelector("[data-live=state][data-rsv='" + r.id + "']");
          var before = stateCell && stateCell.querySelector(".state");
          var changed = before && !before.classList.contains("state-" + r.state);
          document.querySelectorAll("[data-rsv='" + r.id + "']").forEach(function (el) {
            var kind = el.getAttribute("data-live");
            if (kind === "state") el.innerHTML = r.state_html;
            else if (kind === "sync") el.innerHTML = r.sync_html;
            else if (kind === "label") { el.textContent = r.state_label; el.className = "state state-" + r.state; }
            if (el.tagName === "TR") { el.setAttribute("data-state", r.state); el.setAttribute("data-sync", r.sync); }
          });
          if (changed && note) {
            var subject = (document.querySelector("#rsv-" + r.id + " .subject") || document.querySelector("h1") || {}).textContent || "The reservation";
            note.textContent = subject.trim() + ": " + r.state_label + ".";
          }
        });
      }).catch(function () { /* the next tick tries again */ }).finally(function () { window.setTimeout(tick, 2000); });
    };
    window.setTimeout(tick, 1500);
  }

  // --- my reservations: "Cancel selected…" says what is missing instead of doing nothing -----
  function setUpCancelSelected() {
    var button = document.getElementById("cancel-selected");
    if (!button || button.disabled) return;
    var form = button.form, hint = document.getElementById("cancel-selected-hint");
    var sync = function () {
      var any = form.querySelector("input[name='ids']:checked");
      button.setAttribute("aria-disabled", any ? "false" : "true");
      if (hint) hint.hidden = !!any;
    };
    form.addEventListener("change", sync);
    form.addEventListener("submit", function (event) {
      if (event.submitter === button && !form.querySelector("input[name='ids']:checked")) {
        event.preventDefault();
        event.stopImmediatePropagation();
        if (hint) { hint.hidden = false; hint.textContent = "Tick the reservations to cancel first."; }
      }
    }, true);
    sync();
  }

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

  // --- the booking grids: click, drag (mouse, pen, touch) or the keyboard picks free slots -----
  // A building's day (#day-grid: half-hour slots, reservations/calendar_grid.py) and its week
  // (#building-week: hour columns grouped by day, reservations/building_week.py). Every free slot
  // is already a link to the booking form (so the grids work without JavaScript); here a drag
  // or Shift+arrows widen the choice to several slots of one room (and one day), and the booking
  // form opens with the first slot's start and the last one's end. A slot's kind: "both" (free
  // throughout), "first" (only its first half is free: the week's "part open-start" cells) or
  // "second" (only its second half); a range may begin on a "second" and end on a "first",
  // everything between must be free throughout. ``geometry``: the grid's element, its
  // live-region status, its scroll box and the slots per day (Home/End stay in a day,
  // PageUp/PageDown move a day when there are several).
  function setUpSlotGrid(geometry) {
    var grid = geometry.grid;
    document.querySelectorAll(".js-only").forEach(function (el) { el.hidden = false; });
    var status = geometry.status;
    var rows = Array.prototype.slice.call(grid.querySelectorAll("tbody tr[data-book]"));
    if (!rows.length) return;
    // slots[r][h] = the cell covering slot h of row r (busy and past cells span several).
    var slots = rows.map(function (tr) {
      var list = [];
      tr.querySelectorAll("td[data-slot]").forEach(function (td) {
        var first = +td.getAttribute("data-slot"), span = +(td.getAttribute("data-span") || 1);
        for (var k = 0; k < span; k++) list[first + k] = td;
        var a = td.querySelector("a");
        var bookable = td.classList.contains("free") || td.classList.contains("part");
        if (bookable) {
          var q = new URL(a.href, window.location.href).searchParams;
          td._start = q.get("start");
          td._end = q.get("end");
          td._kind = td.classList.contains("free") ? "both" : (td.classList.contains("open-start") ? "first" : "second");
        } else {
          td.setAttribute("tabindex", "-1");
        }
        if (a) a.setAttribute("tabindex", "-1");
      });
      return list;
    });
    var count = slots[0].length;
    var perDay = Math.min(geometry.perDay || count, count);
    var kind = function (r, h) { var td = slots[r] && slots[r][h]; return td ? td._kind || null : null; };
    var day = function (r, h) { return Math.floor(+slots[r][h].getAttribute("data-slot") / perDay); };
    var target = function (td) { return td._kind ? td.querySelector("a") : td; };
    var cur = null, anchor = null, sel = null;

    // The first cell's link (its room, day and start) with the last one's end.
    function url() {
      var first = slots[sel.r][sel.from], last = slots[sel.r][sel.to];
      return first.querySelector("a").getAttribute("href").replace(/([?&]end=)[^&]*/, "$1" + last._end);
    }
    function paint() {
      grid.querySelectorAll("td.selected").forEach(function (td) { td.classList.remove("selected"); });
      if (!sel) { if (status) status.textContent = ""; return; }
      for (var h = sel.from; h <= sel.to; h++) slots[sel.r][h].classList.add("selected");
      if (status) {
        var first = slots[sel.r][sel.from], last = slots[sel.r][sel.to];
        // "Book Dojo, 09:00–09:30" (the day) or "Book Dojo, Tue 8 Dec, 09:00–10:00" (the week), less the verb and time.
        var label = first.querySelector("a").getAttribute("aria-label").replace(/^Book /, "").replace(/, [0-9:]+–[0-9:]+$/, "");
        status.textContent = label + ", " + first._start + "–" + last._end + " selected. Press Enter to book.";
      }
    }
    function select(r, h) { anchor = { r: r, h: h }; sel = { r: r, from: h, to: h }; paint(); }
    function focusAt(r, h) {
      if (cur) target(slots[cur.r][cur.h]).setAttribute("tabindex", "-1");
      cur = { r: r, h: h };
      var el = target(slots[r][h]);
      el.setAttribute("tabindex", "0");
      el.focus();
    }
    // Widen from the anchor towards slot h (same room, same day), stopping where the time
    // stops being free without a gap.
    function extend(r, from, to) {
      var last = from;
      if (to > from && (kind(r, from) === "both" || kind(r, from) === "second")) {
        for (var h = from + 1; h <= to && h < count; h++) {
          var k = kind(r, h);
          if (day(r, h) !== day(r, from) || (k !== "both" && k !== "first")) break;
          last = h;
          if (k === "first") break;
        }
      } else if (to < from && (kind(r, from) === "both" || kind(r, from) === "first")) {
        for (var g = from - 1; g >= to && g >= 0; g--) {
          var j = kind(r, g);
          if (day(r, g) !== day(r, from) || (j !== "both" && j !== "second")) break;
          last = g;
          if (j === "second") break;
        }
      }
      sel = { r: r, from: Math.min(from, last), to: Math.max(from, last) };
      paint();
      return last;
    }
    // One tab stop for the grid: the first bookable cell (roving tabindex).
    outer: for (var r0 = 0; r0 < rows.length; r0++) {
      for (var h0 = 0; h0 < count; h0++) { if (kind(r0, h0)) { cur = { r: r0, h: h0 }; break outer; } }
    }
    if (!cur) cur = { r: 0, h: 0 };
    target(slots[cur.r][cur.h]).setAttribute("tabindex", "0");

    grid.addEventListener("focusin", function (event) {
      var td = event.target.closest("td[data-slot]");
      if (!td) return;
      var r = rows.indexOf(td.parentElement), h = +td.getAttribute("data-slot");
      if (r < 0) return;
      if (!cur || cur.r !== r || cur.h !== h) {
        if (cur) target(slots[cur.r][cur.h]).setAttribute("tabindex", "-1");
        cur = { r: r, h: h };
        target(td).setAttribute("tabindex", "0");
      }
      if (!sel && kind(r, h)) select(r, h);
    });

    grid.addEventListener("keydown", function (event) {
      if (!cur || !event.target.closest("td[data-slot]")) return;
      var r = cur.r, h = cur.h, key = event.key, td = slots[r][h];
      var span = +(td.getAttribute("data-span") || 1), first = +td.getAttribute("data-slot");
      var dayStart = Math.floor(first / perDay) * perDay;
      if (key === "Enter" || key === " ") {
        if (sel && sel.r === r && kind(r, h)) { event.preventDefault(); window.location.href = url(); }
        return;
      }
      var next = null;
      if (key === "ArrowRight") next = { r: r, h: Math.min(count - 1, first + span) };
      else if (key === "ArrowLeft") next = { r: r, h: Math.max(0, first - 1) };
      else if (key === "ArrowDown" && !event.shiftKey) next = { r: Math.min(rows.length - 1, r + 1), h: h };
      else if (key === "ArrowUp" && !event.shiftKey) next = { r: Math.max(0, r - 1), h: h };
      else if (key === "Home") next = { r: r, h: dayStart };
      else if (key === "End") next = { r: r, h: Math.min(count, dayStart + perDay) - 1 };
      else if (key === "PageDown" && perDay < count) next = { r: r, h: Math.min(count - 1, h + perDay) };
      else if (key === "PageUp" && perDay < count) next = { r: r, h: Math.max(0, h - perDay) };
      if (!next) return;
      event.preventDefault();
      if (event.shiftKey && (key === "ArrowRight" || key === "ArrowLeft") && anchor && anchor.r === r && kind(r, anchor.h)) {
        var reached = extend(r, anchor.h, key === "ArrowRight" ? h + 1 : h - 1);  // the focus is the moving end
        focusAt(r, reached);
        return;
      }
      sel = null;
      anchor = null;
      paint();
      var cell = slots[next.r][next.h];
      focusAt(next.r, +cell.getAttribute("data-slot"));
      if (kind(next.r, cur.h)) select(next.r, cur.h);
    });

    var drag = null, suppressClick = false;
    grid.addEventListener("pointerdown", function (event) {
      if (event.button !== 0) return;
      var td = event.target.closest("td[data-slot]");
      if (!td || !td._kind) return;
      var r = rows.indexOf(td.parentElement), h = +td.getAttribute("data-slot");
      if (r < 0) return;
      if (event.pointerType === "mouse") event.preventDefault();  // no text selection while dragging
      drag = { r: r, h: h, moved: false };
      select(r, h);
    });
    grid.addEventListener("pointermove", function (event) {
      if (!drag) return;
      var el = document.elementFromPoint(event.clientX, event.clientY);
      var td = el && el.closest ? el.closest("td[data-slot]") : null;
      if (!td || td.parentElement !== rows[drag.r]) return;
      var h = +td.getAttribute("data-slot");
      if (h !== drag.h) drag.moved = true;
      extend(drag.r, drag.h, h);
    });
    var finish = function (event) {
      if (!drag) return;
      var done = drag;
      drag = null;
      if (event.type === "pointercancel") { sel = null; anchor = null; paint(); return; }
      if (done.moved && sel && sel.to > sel.from) {
        suppressClick = true;
        window.setTimeout(function () { suppressClick = false; }, 400);
        window.location.href = url();
      }
    };
    document.addEventListener("pointerup", finish);
    document.addEventListener("pointercancel", finish);
    grid.addEventListener("click", function (event) {
      if (suppressClick && event.target.closest("td")) { event.preventDefault(); suppressClick = false; }
    }, true);

    // This week: scroll the box to today's day (on a phone the week is wider than the screen).
    var box = geometry.box, today = grid.querySelector("thead .day-head.today");
    if (box && today && box.scrollWidth > box.clientWidth) {
      var roomCol = grid.querySelector("thead .room-col");
      box.scrollLeft = today.offsetLeft - (roomCol ? roomCol.offsetWidth : 0);
    }
  }

  function setUpGrids() {
    var day = document.getElementById("day-grid");
    if (day) setUpSlotGrid({ grid: day, status: document.getElementById("grid-selection"), box: document.getElementById("day-scroll") });
    var week = document.getElementById("building-week");
    if (week) {
      setUpSlotGrid({ grid: week, status: document.getElementById("week-selection"), box: document.getElementById("week-scroll"),
                      perDay: +week.getAttribute("data-hours") });
    }
  }

  // --- booking form: the people picker ---------------------------------------------------------
  // Searches the product's people and the directory (GET /api/v1/people/?search=), adds the one
  // picked to the attendees box (which stays the form's field: without JavaScript it is all there
  // is), and shows every attendee's free/busy at the chosen time (one /api/v1/freebusy/ call for all).
  function attendeeEmails(text) {
    var emails = [];
    (text || "").split(/[,;\n]+/).forEach(function (chunk) {
      var angle = /<([^>]+)>/.exec(chunk);
      if (angle) emails.push(angle[1].trim());
      else emails.push.apply(emails, chunk.trim().split(/\s+/).filter(Boolean));
    });
    var seen = {};
    return emails.filter(function (e) { var k = e.toLowerCase(); if (seen[k] || e.indexOf("@") < 1) return false; seen[k] = true; return true; });
  }

  function setUpPeoplePicker() {
    var picker = document.getElementById("people-picker");
    if (!picker) return;
    var form = picker.closest("form"), box = form.elements.attendees;
    if (!box) return;
    var input = document.getElementById("people-search"), list = document.getElementById("people-options");
    var status = document.getElementById("people-status"), picked = document.getElementById("picked-people");
    var names = {}, results = [], active = -1, timer = null, fbTimer = null, seq = 0, fbSeq = 0;
    picker.hidden = false;

    function close() { list.hidden = true; input.setAttribute("aria-expanded", "false"); input.removeAttribute("aria-activedescendant"); active = -1; }
    function highlight(i) {
      var items = list.querySelectorAll("[role=option]");
      items.forEach(function (li, n) { li.setAttribute("aria-selected", n === i ? "true" : "false"); });
      active = i;
      if (items[i]) { input.setAttribute("aria-activedescendant", items[i].id); items[i].scrollIntoView({ block: "nearest" }); }
    }
    function render() {
      list.replaceChildren();
      results.forEach(function (p, i) {
        var li = document.createElement("li"), who = document.createElement("span"), mail = document.createElement("span");
        li.id = "person-option-" + i;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        li.setAttribute("data-email", p.email);
        who.className = "person-name";
        who.textContent = p.name + (p.job_title ? " · " + p.job_title : "");
        mail.className = "person-email";
        mail.textContent = p.email + (p.source === "directory" ? " (directory)" : "");
        li.append(who, mail);
        li.addEventListener("mousedown", function (e) { e.preventDefault(); choose(i); });
        list.append(li);
      });
      list.hidden = !results.length;
      input.setAttribute("aria-expanded", results.length ? "true" : "false");
    }
    function search() {
      var q = input.value.trim();
      if (q.length < 2) { results = []; render(); status.textContent = ""; return; }
      var mine = ++seq;
      getJSON(picker.getAttribute("data-url") + "?" + new URLSearchParams({ search: q }).toString()).then(function (body) {
        if (mine !== seq) return;
        results = body.results || [];
        render();
        status.textContent = results.length ? results.length + (results.length === 1 ? " person found" : " people found") + (body.directory_answered === false ? " (the directory couldn't be asked)" : "")
          : "Nobody found for “" + q + "”.";
      }).catch(function (error) { if (mine === seq) status.textContent = "Couldn't search: " + error.message; });
    }
    function choose(i) {
      var p = results[i];
      if (!p) return;
      names[p.email.toLowerCase()] = p.name;
      var emails = attendeeEmails(box.value);
      if (!emails.some(function (e) { return e.toLowerCase() === p.email.toLowerCase(); })) {
        box.value = (box.value.trim() ? box.value.trim() + "\n" : "") + p.email;
      }
      input.value = "";
      results = [];
      close();
      status.textContent = p.name + " added.";
      refresh();
      input.focus();
    }
    function remove(email) {
      box.value = attendeeEmails(box.value).filter(function (e) { return e.toLowerCase() !== email.toLowerCase(); }).join("\n");
      refresh();
    }
    function refresh() {
      var emails = attendeeEmails(box.value);
      picked.replaceChildren();
      emails.forEach(function (email) {
        var li = document.createElement("li"), who = document.createElement("span"), what = document.createElement("span"), x = document.createElement("button");
        li.setAttribute("data-email", email.toLowerCase());
        who.textContent = names[email.toLowerCase()] ? names[email.toLowerCase()] + " <" + email + ">" : email;
        what.className = "availability availability-unknown";
        what.textContent = "…";
        x.type = "button";
        x.className = "btn btn-small btn-ghost";
        x.textContent = "Remove";
        x.setAttribute("aria-label", "Remove " + (names[email.toLowerCase()] || email));
        x.addEventListener("click", function () { remove(email); });
        li.append(who, what, x);
        picked.append(li);
      });
      clearTimeout(fbTimer);
      fbTimer = setTimeout(function () { availability(emails); }, 200);
    }
    function availability(emails) {
      var tz = picker.getAttribute("data-timezone"), url = picker.getAttribute("data-freebusy-url");
      var start = zonedToISO(form.elements.date.value, form.elements.start_time.value, tz);
      var end = zonedToISO(form.elements.date.value, form.elements.end_time.value, tz);
      if (!emails.length || !url) return;
      var spans = function () { return picked.querySelectorAll(".availability"); };
      if (!start || !end || end <= start) { spans().forEach(function (s) { s.textContent = "choose the time"; }); return; }
      var mine = ++fbSeq;
      getJSON(url + "?" + new URLSearchParams({ emails: emails.slice(0, 20).join(","), start: start, end: end }).toString()).then(function (body) {
        if (mine !== fbSeq) return;
        (body.schedules || []).forEach(function (s) {
          var li = picked.querySelector("li[data-email='" + CSS.escape(s.email.toLowerCase()) + "']");
          var span = li && li.querySelector(".availability");
          if (!span) return;
          span.textContent = availabilityWord(s.availability);
          span.className = "availability availability-" + (AVAILABILITY_WORDS[s.availability] ? s.availability : "unknown");
        });
      }).catch(function (error) {
        if (mine === fbSeq) spans().forEach(function (s) { s.textContent = "unknown"; s.title = error.message; });
      });
    }

    input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(search, 200); });
    input.addEventListener("keydown", function (e) {
      var count = results.length;
      if (e.key === "ArrowDown" && count) { e.preventDefault(); if (list.hidden) render(); highlight((active + 1) % count); }
      else if (e.key === "ArrowUp" && count) { e.preventDefault(); highlight((active - 1 + count) % count); }
      else if (e.key === "Enter") { e.preventDefault(); if (active >= 0) choose(active); else if (count === 1) choose(0); }
      else if (e.key === "Escape") { close(); }
    });
    input.addEventListener("blur", function () { setTimeout(close, 100); });
    var boxTimer = null;
    box.addEventListener("input", function () { clearTimeout(boxTimer); boxTimer = setTimeout(refresh, 400); });
    ["date", "start_time", "end_time"].forEach(function (name) {
      if (form.elements[name]) form.elements[name].addEventListener("change", refresh);
    });
    refresh();
  }
})();
