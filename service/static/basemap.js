// Coastlines and borders over the map: an SVG layer laid exactly over the map image, in the image's own
// pixels (viewBox), clipped to the plotting area by a nested viewport. The outlines come from GET v1/models/{id}/basemap
// (Natural Earth, shipped with the service: nothing is fetched from elsewhere) as lines of [lon, lat];
// the map's documented geometry (static/mapgeometry.js) places them.
"use strict";

(() => {
  const SVG = "http://www.w3.org/2000/svg";

  function node(tag, attrs) {
    const element = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) element.setAttribute(k, String(v));
    return element;
  }

  // Lay `svg` over `img` and draw `lines` with `geometry`; returns how many outlines were drawn.
  function draw(svg, img, geometry, lines) {
    svg.replaceChildren();
    if (!img.naturalWidth || !geometry || !lines) return 0;
    svg.setAttribute("viewBox", `0 0 ${img.naturalWidth} ${img.naturalHeight}`);
    svg.setAttribute("width", String(img.clientWidth));
    svg.setAttribute("height", String(img.clientHeight));
    svg.style.left = `${img.offsetLeft}px`;
    svg.style.top = `${img.offsetTop}px`;
    const [left, top, right, bottom] = window.FnoMapGeometry.plotBox(geometry, img);
    // A nested viewport over the plotting area, in the same coordinates: it clips what lies outside.
    const [width, height] = [right - left, bottom - top];
    const group = node("svg", { x: left, y: top, width, height, viewBox: `${left} ${top} ${width} ${height}`, class: "outlines" });
    for (const line of lines) {
      const points = line.map(([longitude, latitude]) => {
        const at = window.FnoMapGeometry.toImage(geometry, img, { latitude, longitude });
        return `${at.x.toFixed(1)},${at.y.toFixed(1)}`;
      });
      group.append(node("polyline", { points: points.join(" ") }));
    }
    svg.append(group);
    return lines.length;
  }

  window.FnoBasemap = { draw };
})();
