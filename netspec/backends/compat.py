"""Which tensors of one state_dict load into another network: the one comparison behind `netspec compat`,
`netspec diff`'s state_dict section, `netspec.load_weights` and `train --init-from`.

It works on shapes only ({key: shape}), so it is pure, torch-free and testable without tensors.  A target key
*loads* when a source key of the same name (after `rename`) has the same shape; otherwise the target key is
*new* (no source tensor of that name: it keeps its initialization), or *reshaped* (same name, another shape).  A
source key no target key takes is *dropped*.  When keys are left over on both sides, `renames` suggests module
prefix renames (`{"features": ""}`, `{"layer1.0.norm1": "layer1.0.bn1"}`) that would match most of them at
once, found greedily: the rename that matches the most leftover keys first.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Iterable, Mapping

Shapes = Mapping[str, tuple]
SHOWN = 12                # keys listed per kind before "… and N more"
MAX_RENAMES = 5           # suggested renames at most
MAX_PARTNERS = 64         # target keys of one name suffix and shape considered per source key (bounds the search)


@dataclass(frozen=True)
class Reshaped:
    key: str
    model_shape: tuple[int, ...]      # the target's
    given_shape: tuple[int, ...]      # the source's


@dataclass(frozen=True)
class Rename:
    """A suggested `rename` entry: source module prefix → target module prefix, and how many keys it matches."""

    source: str
    target: str
    keys: int


@dataclass(frozen=True)
class Compat:
    """How a source state_dict fits a target network.  Keys are in the target's (or, for `dropped`, the
    source's) order."""

    loaded: Mapping[str, str]                 # target key → the source key it takes (the same name unless renamed)
    new: tuple[str, ...]                      # target keys without a source tensor of their name
    reshaped: tuple[Reshaped, ...]            # same name, another shape: not loadable
    dropped: tuple[str, ...]                  # source keys no target key takes (reshaped ones excluded)
    doubled: tuple[tuple[str, tuple[str, ...]], ...] = ()   # target key given by several source keys (rename)
    skipped: tuple[str, ...] = ()             # target keys left alone on request (`skip`)
    renames: tuple[Rename, ...] = ()          # suggested when keys are left over on both sides
    target_count: int = 0
    source_count: int = 0

    def __str__(self) -> str:
        return render(self)

    @property
    def complete(self) -> bool:
        """Every target key (not skipped) gets a tensor and every source tensor is used exactly once."""
        return not (self.new or self.reshaped or self.dropped or self.doubled)

    def to_json(self) -> dict:
        return {"target_keys": self.target_count, "source_keys": self.source_count, "complete": self.complete,
                "loaded": [{"key": k, "from": s} if k != s else {"key": k} for k, s in self.loaded.items()],
                "new": list(self.new), "dropped": list(self.dropped),
                "reshaped": [{"key": r.key, "shape": list(r.model_shape), "source_shape": list(r.given_shape)}
                             for r in self.reshaped],
                "doubled": [{"key": k, "from": list(s)} for k, s in self.doubled],
                "skipped": list(self.skipped),
                "renames": [{"from": r.source, "to": r.target, "keys": r.keys} for r in self.renames]}


def under(key: str, prefix: str) -> bool:
    """Whether `key` is the module `prefix` or inside it (`fc.weight` is under `fc`, `fc2.weight` is not)."""
    return prefix == "" or key == prefix or key.startswith(prefix + ".")


def rename_key(key: str, rename: Mapping[str, str]) -> str:
    """`key` with its longest matching module prefix in `rename` replaced (`{"module": ""}` strips one level)."""
    matches = [p for p in rename if under(key, p)]
    if not matches:
        return key
    prefix = max(matches, key=len)
    rest = key[len(prefix):].lstrip(".")
    return ".".join(part for part in (rename[prefix], rest) if part)


def compare(target: Shapes, source: Shapes, rename: Mapping[str, str] | None = None,
            skip: Iterable[str] = ()) -> Compat:
    """How `source` ({key: shape}) fits `target`; `rename` maps source module prefixes to the target's, `skip`
    names target modules to leave alone (source tensors renamed into them are neither loaded nor dropped)."""
    rename, skip = dict(rename or {}), tuple(skip)

    def skipped(key: str) -> bool:
        return any(under(key, p) for p in skip)

    sources: dict[str, list[str]] = {}
    for key in source:
        renamed = rename_key(key, rename)
        if not skipped(renamed):
            sources.setdefault(renamed, []).append(key)
    loaded, new, reshaped, doubled = {}, [], [], []
    for key, shape in target.items():
        if skipped(key):
            continue
        given = sources.get(key)
        if not given:
            new.append(key)
            continue
        if len(given) > 1:
            doubled.append((key, tuple(given)))
        if tuple(source[given[0]]) == tuple(shape):
            loaded[key] = given[0]
        else:
            reshaped.append(Reshaped(key, tuple(shape), tuple(source[given[0]])))
    dropped = [src for renamed, srcs in sources.items() if renamed not in target for src in srcs]
    suggestions = suggest_renames({k: target[k] for k in new}, {k: source[k] for k in dropped})
    return Compat(loaded, tuple(new), tuple(reshaped), tuple(dropped), tuple(doubled),
                  tuple(k for k in target if skipped(k)), suggestions, len(target), len(source))


def suggest_renames(missing: Shapes, unexpected: Shapes) -> tuple[Rename, ...]:
    """Module prefix renames, source → target, that would match leftover source keys to leftover target keys
    of the same shape, the ones matching most keys first (each key counted once).

    A candidate pairs a source key with a target key of the same shape whose dotted name ends the same way:
    the longest common ending is kept (`layer1.0.conv1.weight` in `backbone.layer1.0.conv1.weight` →
    `{"backbone": ""}`), and what precedes it on each side is the rename.  Work is bounded: per source key, at
    most MAX_PARTNERS target keys of its longest shared ending are looked at."""
    if not missing or not unexpected:
        return ()
    by_ending: dict[tuple[str, tuple], list[str]] = {}
    for key, shape in missing.items():
        parts = key.split(".")
        for i in range(len(parts)):
            by_ending.setdefault((".".join(parts[i:]), tuple(shape)), []).append(key)
    candidates: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for key, shape in unexpected.items():
        parts = key.split(".")
        for i in range(len(parts)):      # the longest ending first
            ending = ".".join(parts[i:])
            partners = by_ending.get((ending, tuple(shape)))
            if not partners:
                continue
            prefix = ".".join(parts[:i])
            for partner in partners[:MAX_PARTNERS]:
                target_prefix = partner[:len(partner) - len(ending)].rstrip(".")
                if prefix != target_prefix:
                    candidates.setdefault((prefix, target_prefix), set()).add((key, partner))
            break
    # Lazy greedy: a candidate's count of still-unmatched keys only falls as renames are chosen, so a popped
    # candidate whose recount equals its stored count is the best one left.
    def rank(prefixes: tuple[str, str], count: int) -> tuple:
        # More keys first; then the rename that keeps more of the path (a closer relative), then the shorter.
        return (-count, -_shared_head(*prefixes), len(prefixes[0]) + len(prefixes[1]), prefixes)

    heap = [rank(prefixes, len(pairs)) for prefixes, pairs in candidates.items()]
    heapq.heapify(heap)
    chosen: list[Rename] = []
    used_sources: set[str] = set()
    used_targets: set[str] = set()
    while heap and len(chosen) < MAX_RENAMES:
        entry = heapq.heappop(heap)
        prefixes = entry[-1]
        fresh = _fresh(candidates[prefixes], used_sources, used_targets)
        if not fresh:
            continue
        if len(fresh) != -entry[0]:
            heapq.heappush(heap, rank(prefixes, len(fresh)))
            continue
        chosen.append(Rename(prefixes[0], prefixes[1], len(fresh)))
        used_sources |= {s for s, _ in fresh}
        used_targets |= {t for _, t in fresh}
    return tuple(chosen)


def _fresh(pairs: set[tuple[str, str]], used_sources: set[str], used_targets: set[str]) -> list[tuple[str, str]]:
    """The pairs whose keys no chosen rename has matched yet, each source and target key in one pair at most."""
    sources: set[str] = set()
    targets: set[str] = set()
    fresh = []
    for source, target in sorted(pairs):
        if source not in sources and target not in targets and source not in used_sources \
                and target not in used_targets:
            sources.add(source)
            targets.add(target)
            fresh.append((source, target))
    return fresh


def _shared_head(a: str, b: str) -> int:
    count = 0
    for x, y in zip(a.split("."), b.split(".")):
        if x != y:
            break
        count += 1
    return count


# ── the report, as text ───────────────────────────────────────────────────────────────────────────────────────

def headline(report: Compat) -> str:
    """One line: how many of the target's tensors load, and what is left over."""
    parts = [f"{len(report.loaded)} of {report.target_count} tensors load"]
    counts = [(len(report.new), "new"), (len(report.reshaped), "with another shape"),
              (len(report.dropped), "dropped"), (len(report.doubled), "given twice"),
              (len(report.skipped), "skipped")]
    parts += [f"{n} {what}" for n, what in counts if n]
    return ", ".join(parts)


def render(report: Compat, source: str = "the source", target: str = "the target", hint: bool = True) -> str:
    """The report as text: the headline, then every kind of leftover key (cut at SHOWN each), then the
    suggested renames or skips (`hint`: where they apply).  `compat`, `load_weights`' error and `train
    --init-from` all print this."""
    lines = [headline(report)]
    lines += _section(f"new (in {target}, not in {source})", report.new)
    lines += _section(f"with another shape ({target} vs {source})", [
        f"{r.key}: {list(r.model_shape)} vs {list(r.given_shape)}" for r in report.reshaped])
    lines += _section(f"dropped (in {source}, not in {target})", report.dropped)
    lines += _section("given twice (after `rename`)", [f"{k} ← {', '.join(s)}" for k, s in report.doubled])
    lines += _section("skipped (left as they are)", report.skipped)
    text = advice(report, source, target) if hint else None
    if text:
        lines.append(f"hint: {text}")
    return "\n".join(lines)


def advice(report: Compat, source: str = "the source", target: str = "the target") -> str | None:
    """What to do about the leftovers: renames that match them, or `skip` for modules only reshaped."""
    renames = rename_hint(report, source, target)
    if renames:
        return renames
    if report.reshaped and not report.new and not report.dropped:
        modules = sorted({r.key.rsplit(".", 1)[0] for r in report.reshaped})
        return f"to load the rest and keep {target}'s own {', '.join(modules)} as initialized, pass skip={modules!r}"
    return None


def rename_hint(report: Compat, source: str = "the source", target: str = "the target") -> str | None:
    """The suggested renames as one sentence, in `rename=` form (source prefix → target prefix)."""
    if not report.renames:
        return None
    if all(r.source == "module" and r.target == "" for r in report.renames):
        return f"{source} was saved from a DataParallel/DDP wrapper: pass rename={{\"module\": \"\"}}"
    table = "{" + ", ".join(f"{r.source!r}: {r.target!r}" for r in report.renames) + "}"
    covered = sum(r.keys for r in report.renames)
    text = (f"pass rename={table} ({source}'s module prefix → {target}'s): it matches {covered} of the "
            f"{len(report.dropped)} dropped tensors to new ones of the same shape")
    first = report.renames[0]
    if first.source and first.target:
        text += f"; or rename the spec's `{first.target}` to {source}'s name, `{first.source}`"
    return text


def _section(title: str, items) -> list[str]:
    items = list(items)
    if not items:
        return []
    shown = [f"    {item}" for item in items[:SHOWN]]
    more = [f"    … and {len(items) - SHOWN} more"] if len(items) > SHOWN else []
    return [f"  {title}:"] + shown + more


__all__ = ["Compat", "Rename", "Reshaped", "advice", "compare", "headline", "render", "rename_hint", "rename_key",
           "suggest_renames", "under", "SHOWN"]
