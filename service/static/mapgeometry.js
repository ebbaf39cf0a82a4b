// Where the map's plotting area lies in the PNG, and the conversions between image pixels and degrees.
//
// The map endpoint documents its geometry in two response headers:
//   X-Map-Extent: "lon_min,lon_max,lat_min,lat_max"  axis limits of the plotting area, degrees
//   X-Plot-Box:   "left,top,right,bottom"            the plotting area in PNG pixels, origin top left
// Without them the plot is assumed to fill the image and to span the model's grid.
"use strict";

(() => {
  function numbers(text) {
    const values = text ? text.split(",").map(Number) : [];
    return values.length === 4 && values.every(Number.isFinite) ? values : null;
  }

  // {extent, box, documented}: box null means the whole image.
  function fromHeaders(headers, gridExtent) {
    const extent = numbers(headers.get("X-Map-Extent"));
    const box = numbers(headers.get("X-Plot-Box"));
    return { extent: extent || gridExtent, box, documented: Boolean(extent && box) };
  }

  function plotBox(geometry, img) {
    return geometry.box || [0, 0, img.naturalWidth, img.naturalHeight];
  }

  // A click at (offsetX, offsetY) CSS pixels in the displayed image -> {latitude, longitude}, or null
  // when it falls outside the plotting area.
  function toLatLon(geometry, img, offsetX, offsetY) {
    const [left, top, right, bottom] = plotBox(geometry, img);
    const fx = ((offsetX * img.naturalWidth) / img.clientWidth - left) / (right - left);
    const fy = ((offsetY * img.naturalHeight) / img.clientHeight - top) / (bottom - top);
    if (fx < 0 || fx > 1 || fy < 0 || fy > 1) return null;
    const [lonMin, lonMax, latMin, latMax] = geometry.extent;
    return { latitude: latMax - fy * (latMax - latMin), longitude: lonMin + fx * (lonMax - lonMin) };
  }

  // A location -> {x, y, inside} in the image's own pixels (inside: within the plot). Longitudes in any
  // convention (-115 and 245 are the same meridian).
  function toImage(geometry, img, point) {
    const [left, top, right, bottom] = plotBox(geometry, img);
    const [lonMin, lonMax, latMin, latMax] = geometry.extent;
    const lon = lonMin + ((((point.longitude - lonMin) % 360) + 360) % 360);
    const fx = (lon - lonMin) / (lonMax - lonMin);
    const fy = (latMax - point.latitude) / (latMax - latMin);
    const inside = fx >= 0 && fx <= 1 && fy >= 0 && fy <= 1;
    return { x: left + fx * (right - left), y: top + fy * (bottom - top), inside };
  }

  // A location -> {x, y} CSS pixels within the displayed image, or null outside the plot.
  function toPixel(geometry, img, point) {
    const at = toImage(geometry, img, point);
    if (!at.inside) return null;
    return { x: (at.x * img.clientWidth) / img.naturalWidth, y: (at.y * img.clientHeight) / img.naturalHeight };
  }

  window.FnoMapGeometry = { fromHeaders, toLatLon, toPixel, toImage, plotBox };
})();
