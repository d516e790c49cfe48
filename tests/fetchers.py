"""What in a page of HTML would make a browser load something without a click.

Answers are shown in JupyterLab as trusted HTML, which no sanitizer cleans: an ``<img>`` with
the model's URL (and whatever data it put in it) would be fetched the moment it is shown.
"""

from __future__ import annotations

from html.parser import HTMLParser


class _Fetchers(HTMLParser):
    """Elements and attributes that would make a browser load something without a click."""

    TAGS = frozenset(
        {
            "img",
            "iframe",
            "frame",
            "video",
            "audio",
            "source",
            "picture",
            "object",
            "embed",
            "script",
            "link",
            "image",
            "track",
            "input",
            "base",
        }
    )
    ATTRS = frozenset({"src", "srcset", "poster", "background", "data", "xlink:href", "formaction", "lowsrc", "dynsrc"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        if tag in self.TAGS:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name in self.ATTRS:
                self.found.append(f"{tag}[{name}]")
            if name == "style" and "url(" in (value or "").replace(" ", "").lower():
                self.found.append(f"{tag}[style=url()]")
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style and ("url(" in data or "@import" in data):
            self.found.append("<style> url()")


def fetchers(html: str) -> list[str]:
    parser = _Fetchers()
    parser.feed(html)
    return parser.found
