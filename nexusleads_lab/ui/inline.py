"""Layout that survives a sanitiser: the answers' CSS, copied into ``style`` attributes.

A notebook opened without running it is untrusted, and JupyterLab's sanitiser then drops every
``<style>`` block (nbviewer and GitHub do the same) but keeps ``style`` attributes whose values
it can check. So each static answer carries both: the stylesheet (themed colours through
JupyterLab's CSS variables, hover states, for a trusted notebook, nbconvert and the live
session) and, inlined onto each element, the layout part of the same rules: grids, spacing,
sizes, radii, wrapping. Colours are left to the stylesheet on purpose: an inline colour would
override the theme (dark text on a dark theme), and the sanitiser refuses ``var()`` anyway;
without the stylesheet, text takes the viewer's own colours and stays readable.

tinycss2 parses the stylesheets (no regex over CSS), css-inline (Rust) matches the selectors.
"""

from __future__ import annotations

import logging
from functools import cache

from .assets import asset_text

log = logging.getLogger(__name__)

#: Properties copied inline. Layout and type only: no colours, backgrounds or shadows (see above).
LAYOUT_PROPERTIES = frozenset(
    """
    display grid-template-columns gap row-gap column-gap flex flex-wrap flex-direction flex-shrink flex-grow
    align-items justify-content padding padding-top padding-right padding-bottom padding-left
    margin margin-top margin-right margin-bottom margin-left border-radius border-collapse
    font-size font-weight font-style line-height letter-spacing text-transform text-align vertical-align
    white-space word-break overflow overflow-x overflow-y max-width max-height min-width width height
    list-style list-style-type table-layout
    """.split()
)

#: Selectors that only mean something in a live page (states, pseudo-elements, relational).
_DYNAMIC = (":hover", ":focus", ":active", ":disabled", "::", ":has(", ":not(", "[open]")


@cache
def layout_css(names: tuple[str, ...]) -> str:
    """The layout declarations of the named stylesheets (``js/*.css``), as one stylesheet."""
    import tinycss2

    out: list[str] = []
    for name in names:
        for rule in tinycss2.parse_stylesheet(asset_text(name), skip_comments=True, skip_whitespace=True):
            if rule.type != "qualified-rule":
                continue  # @media, @keyframes: nothing a saved answer needs
            selector = tinycss2.serialize(rule.prelude).strip()
            if any(mark in selector for mark in _DYNAMIC):
                continue
            kept = []
            for decl in tinycss2.parse_declaration_list(rule.content, skip_comments=True, skip_whitespace=True):
                if decl.type != "declaration" or decl.lower_name not in LAYOUT_PROPERTIES:
                    continue
                value = tinycss2.serialize(decl.value).strip()
                if "var(" in value or "color-mix(" in value:
                    continue
                kept.append(f"{decl.lower_name}: {value}{' !important' if decl.important else ''}")
            if kept:
                out.append(f"{selector} {{ {'; '.join(kept)} }}")
    return "\n".join(out)


def with_inline_layout(html: str, *names: str) -> str:
    """``html`` with the layout of the ``names`` stylesheets on each element's ``style``. If the
    inliner fails (it should not), the HTML is returned as it was: styled only where trusted."""
    try:
        import css_inline

        return css_inline.inline_fragment(html, layout_css(names))
    except Exception:
        log.debug("could not inline the answer's layout", exc_info=True)
        return html
