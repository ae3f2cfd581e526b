// Keeps the console's "À traiter" panel, badge and page title live while the page stays open (another tab
// during a snow night): server-sent events from /console/events, else polling /console/attention.
// Without this script the same panel is rendered with every page load.
(function () {
  "use strict";
  var panel = document.getElementById("attention");
  if (!panel || !window.fetch) { return; }
  var badge = document.getElementById("attention-badge");
  var summary = panel.querySelector(".summary");
  var list = panel.querySelector(".attention-items");
  var seenButton = panel.querySelector("form button");
  var soundLabel = panel.querySelector(".sound");
  var soundBox = document.getElementById("attention-sound");
  var baseTitle = document.title.replace(/^\(\d+\) /, "");
  var lastTotal = badge ? Number(badge.querySelector(".count").textContent) || 0 : 0;
  var POLL_MS = 4000;

  function soundWanted() {
    try { return window.localStorage.getItem("crieur-sound") === "1"; } catch (e) { return false; }
  }
  if (soundLabel && soundBox && (window.AudioContext || window.webkitAudioContext)) {
    soundLabel.hidden = false;
    soundBox.checked = soundWanted();
    soundBox.addEventListener("change", function () {
      try { window.localStorage.setItem("crieur-sound", soundBox.checked ? "1" : "0"); } catch (e) { /* private mode */ }
    });
  }

  function beep() {
    if (!soundBox || !soundBox.checked) { return; }
    try {
      var Context = window.AudioContext || window.webkitAudioContext;
      var audio = new Context();
      var tone = audio.createOscillator();
      var gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.value = 0.15;
      tone.connect(gain);
      gain.connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.25);
    } catch (e) { /* no sound available: the title and badge still say it */ }
  }

  function show(state) {
    var total = Number(state.total) || 0;
    document.title = (total ? "(" + total + ") " : "") + baseTitle;
    summary.textContent = state.summary;
    panel.classList.toggle("attention-on", total > 0);
    if (badge) {
      badge.hidden = total === 0;
      badge.querySelector(".count").textContent = String(total);
    }
    if (seenButton) { seenButton.hidden = !state.new_questions; }
    while (list.firstChild) { list.removeChild(list.firstChild); }
    (state.items || []).forEach(function (item) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      li.className = "attention-" + item.kind;
      a.href = item.href;
      a.textContent = item.text;  // citizens' words: text, never HTML
      li.appendChild(a);
      list.appendChild(li);
    });
    if (total > lastTotal) { beep(); }
    lastTotal = total;
  }

  var timer = null;

  function sessionEnded() {
    if (timer) { window.clearInterval(timer); timer = null; }
    summary.textContent = "session terminée : rechargez la page pour vous reconnecter";
    panel.classList.add("attention-on");
  }

  function poll() {
    fetch(panel.getAttribute("data-poll"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (response.redirected || type.indexOf("application/json") !== 0) { sessionEnded(); return null; }
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (state) { if (state) { show(state); } })
      .catch(function () { /* network hiccup: next poll */ });
  }

  function startPolling() {
    if (!timer) { timer = window.setInterval(poll, POLL_MS); }
    poll();
  }

  if (window.EventSource) {
    var source = new EventSource(panel.getAttribute("data-events"));
    source.addEventListener("attention", function (event) {
      try { show(JSON.parse(event.data)); } catch (e) { /* malformed event: keep the last state */ }
    });
    source.onerror = function () {
      // EventSource reconnects by itself; when it gives up (a proxy refusing streams, the session ended),
      // polling takes over and tells an ended session apart
      if (source.readyState === EventSource.CLOSED) { startPolling(); }
    };
  } else {
    startPolling();
  }
}());
