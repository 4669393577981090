"""A Sphinx extension that draws the theme's icons from a sprite inside each page.

pydata-sphinx-theme loads Font Awesome's `fontawesome.js` (1.49 MB: every free icon, and the code
that swaps each `<i class="fa-solid fa-bars">` for an SVG when the page has loaded) on every page,
to show about fifteen icons. After the build, this writes into each page a hidden
`<svg><symbol>` sprite of the icons that page uses (their outlines read from the theme's own copy
of Font Awesome, so they follow the theme's version), replaces each icon element with an `<svg>`
that `<use>`s its symbol, with its attributes and the classes Font Awesome's script would give,
and drops `fontawesome.js` from the page and from the site. Icons then show before any script
runs, and a page carries a few kB of outlines instead. The outlines are Font Awesome Free (CC BY
4.0), credited in each sprite.

An icon the theme's copy does not have fails the build: a page would otherwise show an empty box.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

FONTAWESOME_JS = Path("_static") / "scripts" / "fontawesome.js"
# Font Awesome's class names for its three free styles, and the prefix each maps to.
STYLE_OF_CLASS = {"fa-solid": "fas", "fas": "fas", "fa-regular": "far", "far": "far"}
STYLE_OF_CLASS |= {"fa-brands": "fab", "fab": "fab"}
# One icon pack in fontawesome.js: `var p={name:[width,height,[aliases],"unicode",path],...}`,
# registered a little later by `d("fas",p)`.
PACK = re.compile(r'var p=\{(?P<icons>.*?)\};.*?\bd\("(?P<style>fa[srb])",p\)', re.S)
ICON = re.compile(
    r'(?:"(?P<quoted>[^"]+)"|(?P<bare>[\w$]+)):\[(?P<width>\d+),(?P<height>\d+),'
    r'\[(?P<aliases>[^\]]*)\],"[0-9a-f]+",(?P<path>"[^"]*"|\[[^\]]*\])\]'
)
ELEMENT = re.compile(
    r'<(?P<tag>i|span)\b(?P<attrs>[^>]*\bclass="(?P<classes>[^"]*)"[^>]*)>\s*</(?P=tag)>'
)
SCRIPT = re.compile(r"\s*<(?:script|link)\b[^>]*fontawesome\.js[^>]*>(?:\s*</script>)?")
BODY = re.compile(r"<body\b[^>]*>")
CREDIT = "Font Awesome Free by @fontawesome - https://fontawesome.com - CC BY 4.0"


Icon = tuple[int, int, list[str], str]  # width, height, outline paths, the icon's own name


def read_icons(fontawesome_js: str) -> dict[tuple[str, str], Icon]:
    """(style, name or alias) -> the icon, from the theme's bundle."""
    icons: dict[tuple[str, str], Icon] = {}
    for pack in PACK.finditer(fontawesome_js):
        for icon in ICON.finditer(pack["icons"]):
            paths = re.findall(r'"([^"]*)"', icon["path"])
            name = icon["quoted"] or icon["bare"]
            entry = (int(icon["width"]), int(icon["height"]), [p for p in paths if p], name)
            names = [name, *re.findall(r'"([^"]+)"', icon["aliases"])]
            for name in names:
                icons[(pack["style"], name)] = entry
    return icons


def icon_of(classes: list[str], icons: dict) -> tuple[str, str] | None:
    """The (style, name) an element's classes ask for; None if they name no icon. The name is the
    icon's own, not the alias the classes may use (`fa-search` is `magnifying-glass`)."""
    styles = [STYLE_OF_CLASS[c] for c in classes if c in STYLE_OF_CLASS]
    if not styles:
        return None
    names = [c.removeprefix("fa-") for c in classes if c.startswith("fa-")]
    found = [(styles[0], name) for name in names if (styles[0], name) in icons]
    if not found:
        raise ExtensionError(f"icon_sprite: no Font Awesome icon among the classes {classes}")
    return found[0][0], icons[found[0]][3]


def inline_icons(page: str, icons: dict) -> str:
    """`page` with its icons drawn from an inline sprite and no fontawesome.js."""
    used: dict[tuple[str, str], str] = {}

    def svg(match: re.Match) -> str:
        classes = match["classes"].split()
        icon = icon_of(classes, icons)
        if icon is None:
            return match[0]
        symbol = used.setdefault(icon, f"fa-{icon[0]}-{icon[1]}")
        width, height, _, name = icons[icon]
        # The classes Font Awesome's script gives its SVG: no style class (the theme positions
        # `.fa-solid.fa-magnifying-glass` in its search form only before the swap), the icon's own
        # name, then the element's other classes.
        entry = icons[icon]
        rest = [
            c
            for c in classes
            if c not in STYLE_OF_CLASS and icons.get((icon[0], c.removeprefix("fa-"))) is not entry
        ]
        attrs = match["attrs"].replace(f'class="{match["classes"]}"', "").strip()
        attrs = f" {attrs}" if attrs else ""
        return (
            f'<svg class="{" ".join(["svg-inline--fa", f"fa-{name}", *rest])}"{attrs}'
            f' viewBox="0 0 {width} {height}" aria-hidden="true" focusable="false">'
            f'<use href="#{symbol}"></use></svg>'
        )

    page = ELEMENT.sub(svg, page)
    page = SCRIPT.sub("", page)
    if not used:
        return page
    symbols = "".join(
        f'<symbol id="{symbol}" viewBox="0 0 {icons[icon][0]} {icons[icon][1]}">'
        + "".join(f'<path fill="currentColor" d="{html.escape(d)}"></path>' for d in icons[icon][2])
        + "</symbol>"
        for icon, symbol in used.items()
    )
    sprite = (
        f'<svg xmlns="http://www.w3.org/2000/svg" style="display:none" aria-hidden="true">'
        f"<!-- {CREDIT} -->{symbols}</svg>"
    )
    body = BODY.search(page)
    if body is None:
        raise ExtensionError("icon_sprite: a page has icons but no <body>")
    return page[: body.end()] + sprite + page[body.end() :]


def write_sprites(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    bundle = outdir / FONTAWESOME_JS
    if not bundle.is_file():
        raise ExtensionError(f"icon_sprite: the theme no longer ships {FONTAWESOME_JS}")
    icons = read_icons(bundle.read_text(encoding="utf-8"))
    if not icons:
        raise ExtensionError(f"icon_sprite: no icon found in {bundle}: its format changed")
    for page in outdir.rglob("*.html"):
        if "_static" in page.relative_to(outdir).parts:
            continue
        text = page.read_text(encoding="utf-8")
        page.write_text(inline_icons(text, icons), encoding="utf-8")
    bundle.unlink()
    bundle.with_name(bundle.name + ".map").unlink(missing_ok=True)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("build-finished", write_sprites)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
