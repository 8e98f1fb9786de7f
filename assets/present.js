/* Presentation mode keys: ←/→ and PageUp/PageDown (what presenters' clickers send), F for full
   screen. Only on /present (the buttons exist); the buttons' clicks drive the Dash callbacks. */
(function () {
  var KEYS = {ArrowRight: "present-next", PageDown: "present-next", ArrowDown: "present-next",
              ArrowLeft: "present-prev", PageUp: "present-prev", ArrowUp: "present-prev",
              f: "present-fullscreen", F: "present-fullscreen"};
  document.addEventListener("keydown", function (ev) {
    var id = KEYS[ev.key];
    if (!id || ev.altKey || ev.ctrlKey || ev.metaKey) { return; }
    var t = ev.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) { return; }
    var btn = document.getElementById(id);
    if (!btn) { return; }
    ev.preventDefault();
    btn.click();
  });
})();

/* Fit the slide's map to the project extent (layout.meta.fit = [minlon, minlat, maxlon, maxlat])
   for the map's real size: the same zoom formula as layers/base.view_of, re-run when the window
   changes size (entering/leaving full screen). */
window.minshengPresentFit = function () {
  /* idempotent: called when a slide's figure arrives (until the map is drawn) and on resize */
  var gd = document.querySelector("#present-map .js-plotly-plot") || document.getElementById("present-map");
  if (!gd || !gd.layout || !gd.layout.meta || !gd.layout.meta.fit || !window.Plotly) { return false; }
  var b = gd.layout.meta.fit, w = gd.clientWidth, h = gd.clientHeight;
  if (!w || !h) { return false; }
  var dx = Math.max(b[2] - b[0], 1e-4);
  var dy = Math.max(b[3] - b[1], 1e-4) / Math.max(Math.cos((b[1] + b[3]) / 2 * Math.PI / 180), 0.1);
  var zoom = Math.min(Math.log2(360 * w * 0.94 / (512 * dx)), Math.log2(360 * h * 0.94 / (512 * dy)));
  if (!gd.querySelector("canvas.maplibregl-canvas")) { return false; }  // map not drawn yet
  try {
    var p = window.Plotly.relayout(gd, {"map.center": {lon: (b[0] + b[2]) / 2, lat: (b[1] + b[3]) / 2},
                                        "map.zoom": Math.round(zoom * 100) / 100});
    if (p && p.catch) { p.catch(function () {}); }
  } catch (e) { return false; }
  return true;
};
(function () {
  var timer = null;
  window.addEventListener("resize", function () {
    clearTimeout(timer);
    timer = setTimeout(window.minshengPresentFit, 250);
  });
})();
