// Loaded between require.js and embed-amd.js on pages with widgets (_config.yml, nb_ipywidgets_js).
// The bundles inside embed-amd.js fetch their icon fonts from a webpack public path derived from the
// URL require.js gives each module: by default a path relative to the page, where the fonts are not.
// Map the modules into the vendored folder, so the fonts load from the site itself, with no network.
// These are the four modules embed-amd.js defines, so require.js never fetches these URLs.
(function () {
  var vendor = new URL("vendor", document.currentScript.src).href;
  require.config({
    paths: {
      "@jupyter-widgets/base": vendor + "/base",
      "@jupyter-widgets/controls": vendor + "/controls",
      "@jupyter-widgets/html-manager": vendor + "/html-manager",
      "@jupyter-widgets/html-manager/dist": vendor,
    },
  });
})();
