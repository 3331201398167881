#!/usr/bin/env python3
"""Doxygen's input filter for the Markdown pages (docs/Doxyfile.in).

    doxygen-md-filter.py FILE

The pages are written for GitHub, where they are read most; doxygen 1.9
reads three things in them differently, and this adapts them on the way
in, without changing what GitHub shows:

- GitHub gives each heading an id made from its text ("## Errors" is
  #errors), and the pages link to those ids; doxygen numbers its headings
  instead, so the links would not resolve. Each heading below the page's
  title gets GitHub's id as an explicit {#id}. Doxygen takes no id that
  starts with a digit: a numbered heading ("## 5. Multishot receive")
  keeps doxygen's own id, and a link to it from a page of the reference
  fails the docs build rather than leading nowhere. Doxygen's ids are
  global: two pages with a heading of the same text fail the build too.
- Doxygen reads `::name` as a link to a global name even inside a code
  span, and fails on an IPv6 address such as `::ffff:192.0.2.1`. Such a
  span is written as <tt>, with doxygen's escape for a literal "::".
- Doxygen shows a code span inside a link's text with its backticks; the
  text of such a link is written without them.

Fenced code blocks pass unchanged. Every line stays on its line, so that
doxygen's warnings name the right one. Writes UTF-8 to standard output; uses
nothing beyond the Python standard library.
"""

import re
import sys

FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
HEADING = re.compile(r"^(#{2,6})\s+(.*?)\s*$")
CODE_SPAN = re.compile(r"`([^`]+)`")
LINK_CODE_TEXT = re.compile(r"\[`([^`\]]+)`\]\(")


def github_id(text):
    """The id GitHub gives a heading: its text without markup or
    punctuation, lower case, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def code_span(match):
    text = match.group(1)
    if "::" not in text:
        return match.group(0)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "<tt>" + text.replace("::", "\\::") + "</tt>"


def filter_lines(lines):
    fence = None  # the fence character of the open code block, if any
    seen = {}  # GitHub numbers a repeated id: errors, errors-1, ...
    for line in lines:
        m = FENCE.match(line)
        if m:
            if fence is None:
                fence = m.group(1)[0]
            elif m.group(1)[0] == fence:
                fence = None
            yield line
            continue
        if fence is not None:
            yield line
            continue
        h = HEADING.match(line)
        if h and not h.group(2).endswith("}"):
            ident = github_id(h.group(2))
            count = seen.get(ident, 0)
            seen[ident] = count + 1
            if count:
                ident += "-%d" % count
            if re.match(r"[a-z_]", ident):
                line = "%s {#%s}" % (line.rstrip(), ident)
        line = LINK_CODE_TEXT.sub(r"[\1](", line)
        yield CODE_SPAN.sub(code_span, line)


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: doxygen-md-filter.py FILE\n")
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        lines = f.read().split("\n")
    text = "\n".join(filter_lines(lines))
    sys.stdout.buffer.write(text.encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
