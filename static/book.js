// The book's own behaviour, added to every page by _config.yml (html_js_files).

// sphinx-togglebutton names every fold button "Toggle hidden content": a screen reader's list of
// buttons reads the same words for each solution. Each is named after the title it sits in
// ("Solution to Exercise (5.1 Grok-1's gates)"); aria-expanded still says whether it is open.
// togglebutton.js adds its buttons on DOMContentLoaded, from a script earlier on the page.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".admonition-title > .toggle-button").forEach(function (button) {
    var title = button.parentElement.textContent.replace(/\s+/g, " ").trim();
    if (title) button.setAttribute("aria-label", title);
  });
});

// Search results quote each page's text around the words found, and a page's maths is TeX until
// MathJax typesets it: a snippet read "\(W = q \cdot s\)". Before Sphinx's search cuts its snippet
// (searchtools.js, Search.htmlToText), each formula is rewritten as plain text: "W = q · s".
var TEX_SYMBOLS = {
  cdot: "·", times: "×", le: "≤", leq: "≤", ge: "≥", geq: "≥", ne: "≠", neq: "≠", approx: "≈",
  sim: "~", in: "∈", to: "→", rightarrow: "→", leftarrow: "←", infty: "∞", sum: "Σ", prod: "Π",
  sqrt: "√", odot: "⊙", otimes: "⊗", ldots: "…", cdots: "…", dots: "…", pm: "±", partial: "∂",
  nabla: "∇", ell: "ℓ", alpha: "α", beta: "β", gamma: "γ", delta: "δ", epsilon: "ε",
  varepsilon: "ε", zeta: "ζ", eta: "η", theta: "θ", lambda: "λ", mu: "μ", pi: "π", rho: "ρ",
  sigma: "σ", tau: "τ", phi: "φ", varphi: "φ", chi: "χ", psi: "ψ", omega: "ω", Delta: "Δ",
  Sigma: "Σ", Omega: "Ω", Theta: "Θ", Lambda: "Λ", Pi: "Π", Phi: "Φ", Psi: "Ψ",
};

function readableTeX(tex) {
  return tex
    .replace(/^\s*(\\\(|\\\[|\$\$?)|(\\\)|\\\]|\$\$?)\s*$/g, "") // the delimiters
    .replace(/\\sqrt\{([^{}]*)\}/g, "√($1)")
    .replace(/\\frac\{([^{}]*)\}\{([^{}]*)\}/g, "($1)/($2)")
    .replace(/\\(?:left|right|big|Big|bigl|bigr|displaystyle)\b/g, "")
    .replace(/\\\\/g, " ")
    .replace(/\\(?:,|;|:|!| |quad|qquad)/g, " ")
    .replace(/\\([A-Za-z]+)/g, function (command, name) {
      return Object.prototype.hasOwnProperty.call(TEX_SYMBOLS, name) ? TEX_SYMBOLS[name] : "";
    })
    .replace(/\\([^A-Za-z])/g, "$1") // \% \_ \#
    .replace(/[{}]/g, "")
    .replace(/\s+/g, " ")
    .trim();
}

document.addEventListener("DOMContentLoaded", function () {
  if (typeof Search === "undefined" || !Search.htmlToText) return; // not the search page
  var htmlToText = Search.htmlToText;
  Search.htmlToText = function (htmlString, anchor) {
    var page = new DOMParser().parseFromString(htmlString, "text/html");
    page.querySelectorAll(".math").forEach(function (maths) {
      maths.textContent = readableTeX(maths.textContent);
    });
    return htmlToText(page.documentElement.outerHTML, anchor);
  };
});
