// The widget manager loads its icon fonts relative to its AMD module path; point that
// path at the copy served with the book (beside this file), not at a CDN.
(function () {
  var src = document.currentScript && document.currentScript.src;
  if (!src || typeof require === "undefined") return;
  var base = src.slice(0, src.lastIndexOf("/"));
  require.config({ paths: { "@jupyter-widgets/html-manager/dist": base } });
})();
