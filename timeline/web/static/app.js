// timeline serve: draws the page's Vega-Lite charts (specs embedded as JSON) and drives the as-of slider.
// No inline script, nothing fetched from elsewhere: the specs carry their data, the libraries are served here.
(function () {
  "use strict";
  function draw() {
    document.querySelectorAll("script.vl-spec").forEach(function (el) {
      var target = document.getElementById(el.dataset.target);
      if (!target) { return; }
      var spec = JSON.parse(el.textContent);
      window.vegaEmbed(target, spec, {actions: false, renderer: "svg", tooltip: {theme: "light"}})
        .then(function () { target.dataset.drawn = "true"; })
        .catch(function (err) { target.textContent = "chart could not be drawn: " + err; });
    });
  }
  function isoDay(start, days) {
    var d = new Date(start + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + days);
    return d.toISOString().slice(0, 10);
  }
  function slider() {
    var range = document.getElementById("as-of-slider");
    var input = document.getElementById("as-of");
    var form = document.getElementById("when-form");
    if (!range || !input || !form) { return; }
    range.addEventListener("input", function () { input.value = isoDay(range.dataset.start, Number(range.value)); });
    range.addEventListener("change", function () {
      input.value = isoDay(range.dataset.start, Number(range.value));
      form.submit();
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(); slider(); });
})();
