// The live page's only script: polls the session's state twice a second and opens the result when it ends.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var numbers = ["cadence", "speed", "step_length", "knee_rom_left", "knee_rom_right"];
  function fmt(v, digits) { return v === null || v === undefined ? "-" : v.toFixed(digits); }
  function poll() {
    fetch(live.dataset.status, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (s.ended) { window.location.assign(live.dataset.result); return; }
        document.getElementById("state").textContent = s.state;
        document.getElementById("subject").textContent = s.status + " (" + s.valid_frames + "/" + s.frames_needed + " valid frames)";
        document.getElementById("windows").textContent = s.windows;
        document.getElementById("progress").value = Math.min(s.windows, s.target_windows);
        document.getElementById("frames").textContent = s.frames;
        document.getElementById("fps").textContent = fmt(s.fps, 1);
        numbers.forEach(function (k) {
          document.getElementById("n-" + k).textContent = fmt(s.numbers[k], k === "cadence" || k.indexOf("knee") === 0 ? 0 : 2);
        });
        live.dataset.frames = s.frames;
        setTimeout(poll, 500);
      })
      .catch(function () { setTimeout(poll, 1000); });
  }
  poll();
})();
