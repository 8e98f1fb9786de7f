/* Minsheng Map: the map's viewport, reported to the server only when it needs new data
   (callbacks/lod.py): the view left the extent the map holds, or the zoom moved half a level. */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  minsheng: {
    viewport: function (relayout, loaded) {
      var nu = window.dash_clientside.no_update;
      if (!relayout) { return nu; }
      var derived = relayout["map._derived"], zoom = relayout["map.zoom"];
      if (!derived || !derived.coordinates || typeof zoom !== "number") { return nu; }
      var xs = derived.coordinates.map(function (c) { return c[0]; });
      var ys = derived.coordinates.map(function (c) { return c[1]; });
      var bbox = [Math.min.apply(null, xs), Math.min.apply(null, ys), Math.max.apply(null, xs), Math.max.apply(null, ys)];
      if (loaded && loaded.extent) {
        var e = loaded.extent;
        var within = bbox[0] >= e[0] && bbox[1] >= e[1] && bbox[2] <= e[2] && bbox[3] <= e[3];
        if (within && Math.abs(zoom - loaded.zoom) < 0.5) { return nu; }
      }
      return {bbox: bbox, zoom: zoom};
    }
  }
});
