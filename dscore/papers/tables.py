"""The containers for published numbers: a cell, a table of cells, a claim from the text.

Cells are transcribed as the text shows them (``"67.5±0.5"``, ``"64.3±0.7†"``, ``"86.2 (+2.1)"``,
``"-"``) and parsed here, so that the stored ``text`` of every cell can be checked against the paper.
A cell whose number the paper does not give (``-``, or lost in the text extraction) has
``value=None`` and a ``note`` saying why.
"""
from __future__ import annotations

import re
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Mapping, Sequence

#: Note of cells printed as "-" in a paper: the authors report no number there.
NOT_REPORTED = "not reported ('-' in the paper)"

_CELL = re.compile(r"^\s*(?P<value>[0-9]+(?:\.[0-9]+)?)\s*(?:±\s*(?P<std>[0-9]+(?:\.[0-9]+)?))?\s*"
                   r"(?:\((?P<delta>[+-][0-9]+(?:\.[0-9]+)?)\))?\s*(?P<marks>[†*‡]*)\s*$")


@dataclass(frozen=True)
class Cell:
    """One published number: ``value`` (± ``std``) in the paper's unit, with where it comes from.

    ``row`` and ``col`` are the labels of the cell in its table (tuples, one entry per label level);
    ``text`` is the cell as printed; ``delta`` the "(+x)" annotation some tables print beside a value;
    ``marks`` footnote marks such as "†" (their meaning is not in the text extraction).
    """
    value: float | None
    std: float | None = None
    _: KW_ONLY
    source: str = ""
    dataset: str = ""
    row: tuple = ()
    col: tuple = ()
    text: str = ""
    delta: float | None = None
    marks: str = ""
    unit: str = "top-1 %"
    note: str | None = None


@dataclass(frozen=True)
class Table:
    """A published table: ``cells[(row, col)]`` for every row label × column label."""
    id: str
    source: str
    title: str
    row_names: tuple[str, ...]
    col_names: tuple[str, ...]
    rows: tuple[tuple, ...]
    cols: tuple[tuple, ...]
    cells: Mapping[tuple[tuple, tuple], Cell]
    dataset: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def cell(self, row: Any, col: Any) -> Cell:
        row, col = _key(row), _key(col)
        try:
            return self.cells[(row, col)]
        except KeyError:
            raise ValueError(f"{self.source} has no cell at row {row} / column {col}; rows are {list(self.rows)}, "
                             f"columns {list(self.cols)}") from None

    def records(self) -> list[dict]:
        """One dict per cell (long format, ready for ``pandas.DataFrame``)."""
        out = []
        for r in self.rows:
            for c in self.cols:
                cell = self.cells[(r, c)]
                rec = dict(zip(self.row_names, r))
                rec.update(zip(self.col_names, c))
                rec.update(value=cell.value, std=cell.std, delta=cell.delta, marks=cell.marks, text=cell.text,
                           unit=cell.unit, dataset=cell.dataset, source=cell.source, note=cell.note)
                out.append(rec)
        return out


@dataclass(frozen=True)
class Claim:
    """A statement of a paper that a notebook tests.

    ``quantity`` says what is compared (in words); ``value`` is the number the paper states, a
    ``(low, high)`` range, or None; ``relation`` how ours should relate to it (">", ">=", "≈", "in",
    "peak in", "<"); ``note`` records anything we noticed when checking it against the tables.
    """
    id: str
    text: str
    source: str
    quantity: str
    value: float | tuple[float, float] | None = None
    relation: str = "≈"
    unit: str = ""
    note: str | None = None


def _key(label: Any) -> tuple:
    return tuple(label) if isinstance(label, (tuple, list)) else (label,)


def parse_cell(text: str, *, source: str, dataset: str = "", row: tuple = (), col: tuple = (), unit: str = "top-1 %",
               note: str | None = None, missing_note: str = NOT_REPORTED) -> Cell:
    """A :class:`Cell` from a cell's printed text. ``"-"`` or ``""`` gives ``value=None``.

    ``note`` is attached to every cell; for an empty or "-" cell ``missing_note`` is used when no
    ``note`` is given.
    """
    t = text.strip()
    if t in ("-", ""):
        return Cell(None, None, source=source, dataset=dataset, row=row, col=col, text=text, unit=unit,
                    note=note or missing_note)
    m = _CELL.match(t)
    if m is None:
        raise ValueError(f"cannot parse the cell {text!r} of {source} (row {row}, column {col}); allowed: "
                         f"'12.3', '12.3±0.4', '12.3 (+1.2)', an optional '†', or '-'")
    f = lambda k: None if m.group(k) is None else float(m.group(k))  # noqa: E731
    return Cell(f("value"), f("std"), source=source, dataset=dataset, row=row, col=col, text=text, delta=f("delta"),
                marks=m.group("marks") or "", unit=unit, note=note)


def grid(source: str, title: str, *, row_names: Sequence[str], col_names: Sequence[str],
         rows: Mapping[Any, Sequence[str]], cols: Sequence[Any], dataset: str = "", unit: str = "top-1 %",
         notes: Sequence[str] = (), cells: Mapping[tuple, str | Cell] | None = None,
         missing_note: str = NOT_REPORTED, col_units: Mapping[Any, str] | None = None) -> Table:
    """A :class:`Table` from the printed cells: ``rows`` maps each row label to its cells' text in column order.

    ``source`` reads ``"Tab. <id>"`` (the table's id follows). ``dataset``: the dataset of every cell, or the name
    of the row or column label level that holds each cell's dataset (for tables over several datasets).
    ``cells[(row, col)]``: a note (a string) added to one cell, or a :class:`Cell` that replaces the parsed one
    outright (used for merged cells whose value is printed once); ``col_units[col]`` sets the unit of a column.
    """
    if not isinstance(source, str) or not source.startswith("Tab. "):
        raise ValueError(f"source={source!r} must read 'Tab. <id>'")
    id = source.removeprefix("Tab. ")
    rows_k = tuple(_key(r) for r in rows)
    texts = list(rows.values())
    cols_k = tuple(_key(c) for c in cols)
    extra = {(_key(r), _key(c)): v for (r, c), v in (cells or {}).items()}
    cell_notes = {k: v for k, v in extra.items() if isinstance(v, str)}
    overrides = {k: v for k, v in extra.items() if not isinstance(v, str)}
    dataset_level = dataset if dataset in (*row_names, *col_names) else None
    col_units = {_key(c): u for c, u in (col_units or {}).items()}
    parsed = {}
    for r, line in zip(rows_k, texts):
        if len(line) != len(cols_k):
            raise ValueError(f"{source}: row {r} has {len(line)} cells for {len(cols_k)} columns")
        for c, t in zip(cols_k, line):
            k = (r, c)
            ds = dataset
            if dataset_level is not None:
                labels = dict(zip(row_names, r)) | dict(zip(col_names, c))
                ds = str(labels[dataset_level])
            parsed[k] = overrides.get(k) or parse_cell(t, source=source, dataset=ds, row=r, col=c,
                                                      unit=col_units.get(c, unit), note=cell_notes.get(k),
                                                      missing_note=missing_note)
    unknown = (set(cell_notes) | set(overrides) | {(r, c) for r in rows_k for c in col_units}) - set(parsed)
    if unknown:
        raise ValueError(f"{source}: notes or overrides for cells that do not exist: {sorted(unknown)}")
    return Table(id, source, title, tuple(row_names), tuple(col_names), rows_k, cols_k, parsed,
                 "" if dataset_level is not None else dataset, tuple(notes))


def lookup(tables: Mapping[str, Table], table_id: str) -> Table:
    """``tables[table_id]`` with a clear error; accepts "I", "Tab. I", "Table I", "1", "Tab.1"."""
    key = re.sub(r"^(?:tab(?:le)?\.?)\s*", "", str(table_id).strip(), flags=re.I)
    if key not in tables:
        raise ValueError(f"unknown table {table_id!r}; this paper's tables are {sorted(tables)}")
    return tables[key]


def find_claim(claims: Sequence[Claim], claim_id: str) -> Claim:
    for c in claims:
        if c.id == claim_id:
            return c
    raise ValueError(f"unknown claim {claim_id!r}; known: {[c.id for c in claims]}")


#: what :func:`stated` adds when a figure's text states no plotted value
FIGURE_ONLY = ("values read off the plot", "none",
               "the paper prints this result as a figure only; its text states no value, and our copy of the paper is "
               "its text (prose and captions), so no value could be read off the plot", "")


def stated(statements: Mapping[str, Sequence[tuple[str, str, str, str]]], figure: str, *,
           last: tuple[str, str, str, str] | None = FIGURE_ONLY) -> list[dict]:
    """What a paper's text states about ``figure`` (a key of ``statements``: rows ``(what, the paper states, its
    words, where)``), as pandas-ready records with those four columns, then the row ``last`` (default: the figure's
    plotted values are not in the text; None: nothing)."""
    if figure not in statements:
        raise ValueError(f"unknown figure {figure!r}; statements are recorded for {sorted(statements)}")
    rows = list(statements[figure]) + ([] if last is None else [last])
    return [{"what": w, "the paper states": v, "its words": q, "where": at} for w, v, q, at in rows]
