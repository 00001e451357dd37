"""Located edits of a spec's text: replace a key or a scalar where the loader's marks say it is, leaving every
other character (comments, layout, quoting, flow or block style) as it was.  `netspec upgrade` and `netspec new
--from` rewrite specs this way instead of dumping YAML, which would lose the comments."""

from __future__ import annotations

from dataclasses import dataclass

from netspec.errors import Mark


@dataclass(frozen=True)
class Edit:
    """Replace `old`, written at `mark` (possibly quoted), by `new` (a plain scalar or key)."""

    mark: Mark
    old: str
    new: str


class EditMismatch(Exception):
    """The text at a mark is not what the edit expects (a bug in the caller: marks come from the same text)."""


def _offsets(text: str) -> list[int]:
    starts, pos = [0], 0
    for line in text.splitlines(keepends=True):
        pos += len(line)
        starts.append(pos)
    return starts


def apply(text: str, edits: list[Edit]) -> str:
    """`text` with every edit made; edits must not overlap."""
    starts = _offsets(text)
    spans = []
    for edit in dict.fromkeys(edits):  # a mapping reached through several YAML aliases is one place in the text
        at = starts[edit.mark.line - 1] + edit.mark.col - 1
        for written in (edit.old, f'"{edit.old}"', f"'{edit.old}'"):
            if text.startswith(written, at) and not _continues(text, at + len(written)):
                quote = written[0] if written != edit.old else ""
                spans.append((at, at + len(written), f"{quote}{edit.new}{quote}"))
                break
        else:
            raise EditMismatch(f"{edit.mark}: expected `{edit.old}`, found {text[at:at + 20]!r}")
    out = text
    for start, end, new in sorted(spans, reverse=True):
        out = out[:start] + new + out[end:]
    return out


def _continues(text: str, at: int) -> bool:
    """Whether the token goes on after a match (`out` must not match the start of `outer`)."""
    return at < len(text) and (text[at].isalnum() or text[at] in "_-.")
