"""Build-time code of the documentation site: a Griffe extension for the package's docstrings.

mkdocstrings reads the docstrings with Griffe's Google parser; they are written for Google style
but use a few reStructuredText habits. :class:`SphinxRoles` rewrites them as they are loaded (the
source files are untouched), before mkdocstrings parses them:

* Sphinx roles (``:class:`~a.b.C```, ``:func:`f```, ``:meth:`C.m```, ``:mod:``, ``:data:``,
  ``:attr:``) become cross-references that mkdocs-autorefs turns into links when the target is
  rendered somewhere on the site, and into plain code when it is not (``optional``): a role may
  name a private helper or another library. A name without a module path is resolved in the
  docstring's own scope (its module, its class), as Sphinx does.
* ``Example:`` becomes ``Examples:``, the section Griffe renders as code (it reads a lone
  ``Example:`` as an admonition, whose ``[...]`` outputs would look like Markdown links).
* Argument groups with titles of their own (``InteractionMonitor``'s ``Sampling:``,
  ``Measurement:``, ...) become a bold title followed by an ``Args:`` section, so that every group
  renders as a parameter table under its title.
* ``a, b: text`` in an argument section becomes one entry per name, each with the text.
* A paragraph ending in ``::`` (reStructuredText's literal block marker) ends in ``:``; the
  indented block after it is code in Markdown already.

mkdocs.yml loads it with ``extensions: [docs/hooks.py:SphinxRoles]`` in the Python handler's
options. It is not a page of the site (``exclude_docs``).
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

# :role:`target` and :role:`~target`; the target may end in "()".
_ROLE = re.compile(r":(?:py:)?(class|func|meth|mod|data|attr|exc|obj|const):`(~?)([A-Za-z_][\w.]*)(\(\))?`")
# A section title on a line of its own: "Example:", "Sampling:", "Args:".
_TITLE = re.compile(r"^(\s*)([A-Z][A-Za-z ]*):\s*$")
# The first line of an argument entry: "name: text" or "a, b, c: text".
_ENTRY = re.compile(r"^(\s+)([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*(\([^)]*\))?:(\s.*|)$")
# The section titles of Griffe's Google parser that hold "name: text" entries.
_ARGUMENT_TITLES = {
    "args",
    "arguments",
    "params",
    "parameters",
    "keyword args",
    "keyword arguments",
    "other args",
    "other arguments",
    "other params",
    "other parameters",
    "attributes",
}
# Every section title Griffe's Google parser knows (the rest read as admonitions).
_KNOWN_TITLES = _ARGUMENT_TITLES | {
    "raises",
    "exceptions",
    "returns",
    "yields",
    "receives",
    "examples",
    "warns",
    "warnings",
    "functions",
    "methods",
    "classes",
    "modules",
    "deprecated",
    "type aliases",
    "type parameters",
}


class SphinxRoles(griffe.Extension):
    """Rewrite every docstring of a loaded package for Griffe's Google parser (see the module)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _walk(pkg, set()):
            docstring = obj.docstring
            if docstring is not None and docstring.value:
                docstring.value = rewrite(docstring.value, obj)


def _walk(obj: griffe.Object, seen: set[str]):
    """Every object defined in ``obj`` (aliases, which point elsewhere, are skipped)."""
    if obj.path in seen:
        return
    seen.add(obj.path)
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member, seen)


def rewrite(text: str, obj: griffe.Object | None = None) -> str:
    """The docstring ``text`` of ``obj`` as Griffe's Google parser and Markdown should read it."""
    text = _sections(text, _parameter_names(obj))
    text = re.sub(r"(\S)::$", r"\1:", text, flags=re.MULTILINE)
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.lstrip().startswith((">>>", "...")):  # doctest code stays as it is
            lines[i] = _ROLE.sub(lambda match: _reference(match, obj), line)
    return "\n".join(lines)


def _parameter_names(obj: griffe.Object | None) -> set[str]:
    try:
        return {parameter.name for parameter in obj.parameters}  # functions, and classes' __init__
    except Exception:  # modules and attributes have none
        return set()


def _sections(text: str, parameters: set[str]) -> str:
    lines = text.splitlines()
    out: list[str] = []
    in_arguments = False
    entry_indent = None  # the indentation of an argument section's entries
    for i, line in enumerate(lines):
        title = _TITLE.match(line)
        if title:
            indent, name = title.group(1), title.group(2)
            key = name.lower()
            if key == "example":
                out.append(f"{indent}Examples:")
                in_arguments = False
                continue
            if key not in _KNOWN_TITLES and _is_group(lines, i, parameters):
                out.extend([f"{indent}**{name}**", "", f"{indent}Args:"])
                in_arguments, entry_indent = True, None
                continue
            in_arguments, entry_indent = key in _ARGUMENT_TITLES, None
            out.append(line)
            continue
        if in_arguments and line.strip() and not line.startswith((" ", "\t")):
            in_arguments = False  # back to text at the left margin
        entry = _ENTRY.match(line) if in_arguments else None
        if entry and entry_indent is None:
            entry_indent = entry.group(1)
        if entry and entry.group(1) == entry_indent and "," in entry.group(2):
            out.extend(_split_entry(entry, lines, i))
            continue
        out.append(line)
    return "\n".join(out)


def _is_group(lines: list[str], i: int, parameters: set[str]) -> bool:
    """Whether the title at ``lines[i]`` opens a block of entries naming the object's parameters."""
    if i + 1 >= len(lines):
        return False
    entry = _ENTRY.match(lines[i + 1])
    if not entry:
        return False
    names = [name.strip() for name in entry.group(2).split(",")]
    return bool(parameters) and all(name in parameters for name in names)


def _split_entry(entry: re.Match, lines: list[str], i: int) -> list[str]:
    """``a, b: text`` as ``a: text`` and ``b: text`` (the text's continuation lines follow each)."""
    indent, names, annotation, first = entry.group(1), entry.group(2), entry.group(3) or "", entry.group(4)
    continuation = []
    for line in lines[i + 1 :]:
        if line.strip() and len(line) - len(line.lstrip()) > len(indent):
            continuation.append(line)
        else:
            break
    # The continuation lines are emitted after the last name by the caller's loop; repeat them
    # for the other names here.
    out = []
    parts = [name.strip() for name in names.split(",")]
    for name in parts[:-1]:
        out.append(f"{indent}{name}{annotation}:{first}")
        out.extend(continuation)
    out.append(f"{indent}{parts[-1]}{annotation}:{first}")
    return out


def _reference(match: re.Match, obj: griffe.Object | None) -> str:
    role, short, target, parentheses = match.groups()
    shown = target.rsplit(".", 1)[-1] if short else target
    if role in ("func", "meth") or parentheses:
        shown += "()"
    identifier = _resolve(target, obj)
    code = f"<code>{html.escape(shown)}</code>"
    return f'<autoref identifier="{html.escape(identifier)}" optional>{code}</autoref>'


def _resolve(target: str, obj: griffe.Object | None) -> str:
    """The full path of ``target`` as named in the scope of ``obj`` (``target`` if it cannot tell)."""
    if obj is None or target.startswith("lightning_interactions"):
        return target
    head, _, rest = target.partition(".")
    try:
        path = obj.resolve(head)
    except Exception:  # not a name of that scope: another library, or a typo
        return target
    return f"{path}.{rest}" if rest else path
