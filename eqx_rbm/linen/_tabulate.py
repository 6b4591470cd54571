"""The `tabulate` summary table, drawn with rich in the layout Flax uses."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import numpy as np

from ._bound import Call, Root, check_filter, normalise_rngs

_HIDDEN_METHODS = {"__call__", "<lambda>"}


def _import_rich() -> Any:
    try:
        import rich.console
        import rich.table
        import rich.text
    except ImportError as err:
        raise ImportError(
            'tabulate needs the optional dependency rich; install it with pip install "eqx_rbm[tabulate]"'
        ) from err
    return rich


def tabulate(
    module: Any,
    rngs: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    depth: int | None,
    show_repeated: bool,
    mutable: Any,
    console_kwargs: Mapping[str, Any] | None,
    table_kwargs: Mapping[str, Any],
    column_kwargs: Mapping[str, Any],
) -> str:
    rich = _import_rich()
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
        raise TypeError(f"depth: expected None or a non-negative int, got {depth!r}")
    kwargs = dict(kwargs)
    method = kwargs.pop("method", None)
    rngs = normalise_rngs("rngs", rngs, required=True)
    check_filter("mutable", mutable)
    # Only shapes matter; abstract inputs also keep concrete arrays out of the trace.
    args, kwargs = jax.tree.map(_abstract_leaf, (args, kwargs))
    calls: list[Call] = []

    def run() -> dict[str, Any]:
        root = Root({}, rngs=rngs, mutable=mutable, initializing=True, calls=calls)
        module._run(root, method, args, kwargs)
        return root.mutated()

    # Shapes only: neither the parameters nor the outputs are computed.
    variables = jax.eval_shape(run)
    rows = _rows(calls, variables, depth=depth, show_repeated=show_repeated)
    return _render(
        rich, type(module).__name__, list(variables), rows, console_kwargs, table_kwargs, column_kwargs
    )


def _abstract_leaf(value: Any) -> Any:
    if isinstance(value, jax.Array | np.ndarray):
        return jax.ShapeDtypeStruct(value.shape, value.dtype)
    return value


def _rows(
    calls: list[Call], variables: dict[str, Any], *, depth: int | None, show_repeated: bool
) -> list[tuple[Call, dict[str, Any], dict[str, Any]]]:
    all_paths = {call.path for call in calls}
    seen: set[tuple[str, ...]] = set()
    rows = []
    for call in calls:
        if call.path in seen:
            if not show_repeated:
                continue
            own: dict[str, Any] = {}
            counted: dict[str, Any] = {}
        else:
            if depth is not None and len(call.path) > depth:
                continue
            own = _own_variables(call.path, variables, all_paths)
            # At the depth limit a row also counts everything below it.
            counted = _variables_at(call.path, variables) if len(call.path) == depth else own
        seen.add(call.path)
        rows.append((call, own, counted))
    return rows


def _variables_at(path: tuple[str, ...], variables: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for collection, tree in variables.items():
        for name in path:
            if not isinstance(tree, Mapping) or name not in tree:
                tree = None
                break
            tree = tree[name]
        if tree is not None:
            out[collection] = dict(tree) if isinstance(tree, Mapping) else tree
    return out


def _own_variables(
    path: tuple[str, ...], variables: Mapping[str, Any], all_paths: set[tuple[str, ...]]
) -> dict[str, Any]:
    own = _variables_at(path, variables)
    for collection, tree in own.items():
        if isinstance(tree, dict):
            own[collection] = {k: v for k, v in tree.items() if (*path, k) not in all_paths}
    return own


def _size_and_bytes(tree: Any) -> tuple[int, int]:
    leaves = [leaf for leaf in jax.tree.leaves(tree) if hasattr(leaf, "shape") and hasattr(leaf, "dtype")]
    size = sum(int(np.prod(leaf.shape, dtype=int)) for leaf in leaves)
    nbytes = sum(int(np.prod(leaf.shape, dtype=int)) * np.dtype(leaf.dtype).itemsize for leaf in leaves)
    return size, nbytes


def _bytes_repr(nbytes: int) -> str:
    for scale, unit in ((1e9, "GB"), (1e6, "MB"), (1e3, "KB")):
        if nbytes > scale:
            return f"{nbytes / scale:,.1f} {unit}"
    return f"{nbytes:,} B"


def _size_repr(size: int, nbytes: int) -> str:
    return f"{size:,} [dim]({_bytes_repr(nbytes)})[/dim]" if size else ""


def _leaf_repr(value: Any) -> str:
    if value is None or isinstance(value, bool | int | float):
        return {None: "null", True: "true", False: "false"}.get(value, repr(value))  # type: ignore[arg-type]
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        shape = ",".join(str(d) for d in value.shape)
        return f"[dim]{np.dtype(value.dtype)}[/dim][{shape}]"
    return repr(value)


def _block(value: Any, indent: int = 0) -> Iterator[str]:
    # The block style of a YAML dump (two-space indents, "- " items), which is
    # what Flax prints in its cells; only strings, mappings and sequences occur.
    pad = " " * indent
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, Mapping | list | tuple) and len(item):
                yield f"{pad}{key}:"
                yield from _block(item, indent + 2 if isinstance(item, Mapping) else indent)
            elif isinstance(item, Mapping):
                yield f"{pad}{key}: {{}}"
            elif isinstance(item, list | tuple):
                yield f"{pad}{key}: []"
            else:
                yield f"{pad}{key}: {_leaf_repr(item)}"
    elif isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, Mapping | list | tuple) and len(item):
                lines = list(_block(item, indent + 2))
                yield f"{pad}- {lines[0].lstrip()}"
                yield from lines[1:]
            else:
                yield f"{pad}- {_leaf_repr(item)}"
    else:
        yield pad + _leaf_repr(value)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, Mapping | list | tuple) and len(value) == 0):
        return ""
    return "\n".join(_block(value))


def _inputs(call: Call) -> Any:
    if call.args and call.kwargs:
        return (*call.args, call.kwargs)
    if call.args:
        return call.args[0] if len(call.args) == 1 else call.args
    return call.kwargs or ()


def _sorted(tree: Any) -> Any:
    if isinstance(tree, Mapping):
        return {k: _sorted(tree[k]) for k in sorted(tree)}
    return tree


def _render(
    rich: Any,
    title: str,
    collections: list[str],
    rows: list[tuple[Call, dict[str, Any], dict[str, Any]]],
    console_kwargs: Mapping[str, Any] | None,
    table_kwargs: Mapping[str, Any],
    column_kwargs: Mapping[str, Any],
) -> str:
    # Unlike Flax, table_kwargs may override these defaults (a custom title, say).
    options = {"show_header": True, "show_lines": True, "show_footer": True, "title": f"{title} Summary"}
    table = rich.table.Table(**{**options, **table_kwargs})
    for name in ("path", "module", "inputs", "outputs", *collections):
        table.add_column(name, **column_kwargs)

    totals: dict[str, tuple[int, int]] = dict.fromkeys(collections, (0, 0))
    for call, own, counted in rows:
        cells = []
        for collection in collections:
            size, nbytes = _size_and_bytes(counted[collection]) if collection in counted else (0, 0)
            totals[collection] = (totals[collection][0] + size, totals[collection][1] + nbytes)
            text = _cell(_sorted(own[collection])) if collection in own else ""
            if text:
                text += "\n\n"
            cells.append(f"{text}[bold]{_size_repr(size, nbytes)}[/bold]")
        method = f" [dim]({call.method})[/dim]" if call.method not in _HIDDEN_METHODS else ""
        table.add_row(
            "/".join(call.path),
            call.module + method,
            _cell(_inputs(call)),
            _cell(call.outputs),
            *cells,
        )

    table.columns[3].footer = rich.text.Text.from_markup("Total", justify="right")
    for i, collection in enumerate(collections):
        table.columns[4 + i].footer = _size_repr(*totals[collection])
    size = sum(s for s, _ in totals.values())
    nbytes = sum(b for _, b in totals.values())
    table.caption_style = "bold"
    table.caption = f"\nTotal Parameters: {_size_repr(size, nbytes)}"

    console_options = {"force_terminal": True, "force_jupyter": False, **(console_kwargs or {})}
    buffer = io.StringIO()
    rich.console.Console(file=buffer, **console_options).print(table)
    return "\n" + buffer.getvalue() + "\n"
