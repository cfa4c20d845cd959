// A building's week (reservations/building_week.py): click, drag (mouse, pen, touch) or the
// keyboard picks free hours of one room on one day. Every free hour or half hour is already a
// link to the booking form (so the grid works without JavaScript); here a drag or Shift+arrows
// widen the choice to several hours of one day, and the booking form opens with the first
// cell's free start and the last one's free end. A cell's kind: "both" (a free hour), "first"
// (only its first half is free) or "second" (only its second half): a range may begin on a
// "second" and end on a "first", everything between must be free throughout.
(function () {
  "use strict";

  function setUp() {
    var grid = document.getElementById("building-week");
    if (!grid) return;
    document.querySelectorAll(".js-only").forEach(function (el) { el.hidden = false; });
    var status = document.getElementById("week-selection");
    var box = document.getElementById("week-scroll");
    var rows = Array.prototype.slice.call(grid.querySelectorAll("tbody tr[data-book]"));
    if (!rows.length) return;
    // slots[r][h] = the cell covering hour column h of row r (busy and past cells span several).
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
          td._date = q.get("date");
          td._kind = td.classList.contains("free") ? "both" : (td.classList.contains("open-start") ? "first" : "second");
        } else {
          td.setAttribute("tabindex", "-1");
        }
        if (a) a.setAttribute("tabindex", "-1");
      });
      return list;
    });
    var count = slots[0].length;
    var kind = function (r, h) { var td = slots[r] && slots[r][h]; return td ? td._kind || null : null; };
    var day = function (r, h) { return slots[r][h].getAttribute("data-day"); };
    var target = function (td) { return td._kind ? td.querySelector("a") : td; };
    var cur = null, anchor = null, sel = null;

    function url() {
      var first = slots[sel.r][sel.from], last = slots[sel.r][sel.to];
      return rows[sel.r].getAttribute("data-book") + "?date=" + first._date + "&start=" + first._start + "&end=" + last._end;
    }
    function paint() {
      grid.querySelectorAll("td.selected").forEach(function (td) { td.classList.remove("selected"); });
      if (!sel) { if (status) status.textContent = ""; return; }
      for (var h = sel.from; h <= sel.to; h++) slots[sel.r][h].classList.add("selected");
      if (status) {
        var first = slots[sel.r][sel.from], last = slots[sel.r][sel.to];
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
    // Widen from the anchor towards hour h (same room, same day), stopping where the time
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
      var hours = +grid.getAttribute("data-hours"), dayStart = Math.floor(first / hours) * hours;
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
      else if (key === "End") next = { r: r, h: dayStart + hours - 1 };
      else if (key === "PageDown") next = { r: r, h: Math.min(count - 1, h + hours) };
      else if (key === "PageUp") next = { r: r, h: Math.max(0, h - hours) };
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
      var td = el && el.closest ? el.closest("#building-week td[data-slot]") : null;
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
    var today = grid.querySelector("thead .day-head.today");
    if (box && today && box.scrollWidth > box.clientWidth) {
      var roomCol = grid.querySelector("thead .room-col");
      box.scrollLeft = today.offsetLeft - (roomCol ? roomCol.offsetWidth : 0);
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
