/* The room panel (reservations/views/panel.py): draws the state the server sends, polls
   /panel/state/ every data-poll-seconds, and posts the buttons. When the server can't be
   reached the page turns grey with an "Offline" banner and disables the buttons, and keeps
   retrying; a 401 (token revoked) shows "Signed out". No framework, no CDN. */
(function () {
  "use strict";
  var body = document.body;
  var stateUrl = body.getAttribute("data-state-url");
  var actionUrl = body.getAttribute("data-action-url");
  var csrf = body.getAttribute("data-csrf");
  var pollMs = Math.max(1, parseInt(body.getAttribute("data-poll-seconds"), 10) || 10) * 1000;
  var state = JSON.parse(document.getElementById("panel-state").textContent);
  var lastContact = new Date();
  var busy = false;
  var armedEnd = null;

  function $(id) { return document.getElementById(id); }
  function text(id, value) { $(id).textContent = value || ""; }
  function hhmm(date) { return ("0" + date.getHours()).slice(-2) + ":" + ("0" + date.getMinutes()).slice(-2); }

  function button(label, small, onClick, secondary) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    if (small) { var s = document.createElement("small"); s.textContent = small; b.appendChild(s); }
    if (secondary) b.className = "secondary";
    b.addEventListener("click", onClick);
    return b;
  }

  function group(title, buttons) {
    var g = document.createElement("div");
    g.className = "action-group";
    var h = document.createElement("p");
    h.className = "action-group-title";
    h.textContent = title;
    g.appendChild(h);
    buttons.forEach(function (b) { g.appendChild(b); });
    return g;
  }

  function drawActions() {
    var box = $("action-buttons");
    var a = state.actions;
    var notes = [];
    box.textContent = "";
    if (a.check_in) {
      var c = a.check_in;
      box.appendChild(group("Meeting at " + c.start, [
        button("Check in", "by " + c.until + " or the room is released", function () { act("check-in", { reservation: c.reservation }); }),
      ]));
    } else if (a.check_in_reason) notes.push(a.check_in_reason);
    if (!state.current) {
      if (a.book_now.length) {
        box.appendChild(group("Book now", a.book_now.map(function (o) {
          return button(o.minutes + " min", "until " + o.until, function () { act("book", { minutes: o.minutes }); });
        })));
      } else if (a.book_now_reason) notes.push(a.book_now_reason);
    } else {
      var id = state.current.id;
      if (a.extend.length) {
        box.appendChild(group("Extend", a.extend.map(function (o) {
          return button("+" + o.minutes + " min", "until " + o.until, function () { act("extend", { reservation: id, minutes: o.minutes }); });
        })));
      } else if (a.extend_reason) notes.push("Extend: " + a.extend_reason);
      if (a.end_early) {
        var end = button("End early", "frees the room now", function () {
          if (armedEnd !== id) {  // a second tap confirms: nobody ends a meeting by brushing the screen
            armedEnd = id;
            end.firstChild.textContent = "Tap again to end";
            setTimeout(function () { armedEnd = null; drawActions(); }, 6000);
            return;
          }
          armedEnd = null;
          act("end", { reservation: id });
        }, true);
        box.appendChild(group("Finished?", [end]));
        if (a.end_early_note) notes.push(a.end_early_note);
      } else if (a.end_early_reason) notes.push("End early: " + a.end_early_reason);
    }
    text("action-note", notes.join(" "));
    setButtonsEnabled(body.getAttribute("data-connection") === "online" && !busy);
  }

  function drawTimeline() {
    var t = state.timeline;
    var from = new Date(t.start).getTime(), to = new Date(t.end).getTime(), span = to - from;
    var line = $("timeline"), hours = $("timeline-hours");
    line.textContent = "";
    hours.textContent = "";
    function pct(ms) { return Math.max(0, Math.min(100, (ms - from) / span * 100)); }
    t.meetings.forEach(function (m) {
      var s = document.createElement("div");
      s.className = "slot";
      s.setAttribute("role", "listitem");
      var left = pct(new Date(m.start).getTime()), right = pct(new Date(m.end).getTime());
      s.style.left = left + "%";
      s.style.width = Math.max(0.5, right - left) + "%";
      s.textContent = m.start_label + "–" + m.end_label + " " + m.title;
      line.appendChild(s);
    });
    var now = document.createElement("div");
    now.className = "now-line";
    now.style.left = pct(new Date(t.now).getTime()) + "%";
    line.appendChild(now);
    for (var h = t.first_hour; h <= t.last_hour; h += 2) {
      var l = document.createElement("span");
      l.style.left = pct(from + (h - t.first_hour) * 3600000) + "%";
      l.textContent = ("0" + h).slice(-2) + ":00";
      hours.appendChild(l);
    }
  }

  function draw() {
    body.setAttribute("data-status", state.status);
    text("room-name", state.room.name);
    text("status-label", state.status_label);
    text("clock", state.clock);
    text("date-label", state.date_label);
    text("current-title", state.current ? state.current.title : "No meeting");
    text("current-time", state.current ? state.current.start_label + "–" + state.current.end_label + (state.current.checked_in ? " · checked in" : "") : "");
    text("next-title", state.next ? state.next.title : "Nothing booked");
    text("next-time", state.next ? state.next.start_label + "–" + state.next.end_label : "");
    drawActions();
    drawTimeline();
  }

  function setButtonsEnabled(on) {
    Array.prototype.forEach.call(document.querySelectorAll(".action-buttons button"), function (b) { b.disabled = !on; });
  }

  function setConnection(kind) {
    body.setAttribute("data-connection", kind);
    $("offline-banner").hidden = kind !== "offline";
    $("signed-out-banner").hidden = kind !== "signed-out";
    if (kind === "offline") text("offline-since", " since " + hhmm(lastContact));
    setButtonsEnabled(kind === "online" && !busy);
  }

  function received(resp) {
    if (resp.status === 401) { setConnection("signed-out"); throw new Error("signed out"); }
    if (resp.status >= 500) throw new Error("HTTP " + resp.status);
    return resp.json().then(function (data) { return { ok: resp.ok, data: data }; });
  }

  function poll() {
    fetch(stateUrl, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(received)
      .then(function (r) {
        lastContact = new Date();
        // A refusal (429: polled too often) keeps the last state; the server is reachable.
        if (!busy && r.ok) { state = r.data; draw(); }
        setConnection("online");
      })
      .catch(function () { if (body.getAttribute("data-connection") !== "signed-out") setConnection("offline"); })
      .then(function () { setTimeout(poll, pollMs); });
  }

  function act(action, fields) {
    if (busy) return;
    busy = true;
    setButtonsEnabled(false);
    text("action-result", "Working…");
    var form = new URLSearchParams();
    Object.keys(fields).forEach(function (k) { form.append(k, fields[k]); });
    fetch(actionUrl.replace("ACTION", action), {
      method: "POST", credentials: "same-origin", body: form,
      headers: { "X-CSRFToken": csrf, Accept: "application/json" },
    })
      .then(received)
      .then(function (r) {
        lastContact = new Date();
        setConnection("online");
        if (r.data.state) state = r.data.state;
        var freeFrom = state.current ? state.current.end_label : "now";
        text("action-result", r.ok ? ({ book: "Booked.", extend: "Extended.", end: "Ended early: the room is free from " + freeFrom + ".",
                                        "check-in": "Checked in." })[action] : r.data.message);
      })
      .catch(function () {
        if (body.getAttribute("data-connection") !== "signed-out") {
          setConnection("offline");
          text("action-result", "Not done: the server can't be reached.");
        }
      })
      .then(function () { busy = false; draw(); });
  }

  draw();
  setTimeout(poll, pollMs);
})();
