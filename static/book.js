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
