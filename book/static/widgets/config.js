// Glue between the book's pages and the Jupyter widget manager (embed-amd.js), loaded
// just before it.
(function () {
  var src = document.currentScript && document.currentScript.src;
  if (!src || typeof require === "undefined") return;
  var base = src.slice(0, src.lastIndexOf("/"));
  // The manager loads its icon fonts relative to its AMD module paths; point those paths
  // at the copy served with the book (beside this file), not at a CDN.
  require.config({
    paths: { "@jupyter-widgets": base, "@jupyter-widgets/html-manager/dist": base },
  });
  // Widget labels are typeset with the MathJax 2 call MathJax.Hub.Queue; the book loads
  // MathJax 3, which has no Hub. Forward the call to MathJax 3 instead of failing.
  function shim() {
    var mj = window.MathJax;
    if (!mj || mj.Hub) return;
    mj.Hub = {
      Queue: function (job) {
        var el = job && job[2];
        if (el && typeof window.MathJax.typesetPromise === "function") {
          window.MathJax.typesetPromise([el]).catch(function () {});
        }
      },
    };
  }
  shim();
  document.addEventListener("DOMContentLoaded", shim);
})();
