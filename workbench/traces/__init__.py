"""Trace ingest: OTLP JSON and plain JSONL spans into the ``spans`` table, with token costs.

Reads plain or gzip files (detected by content), streaming line by line:

- OTLP JSON Lines, one ``TracesData`` per line (the Collector file exporter), or one whole
  OTLP JSON document, possibly pretty-printed: a file whose first two non-blank lines are not
  JSON on their own (the only case loaded at once);
- one span per line: an OTLP span object (``traceId``, attribute list) or a flat record
  (``trace_id``, ``span_id``, ``start_ns`` or ``start`` ISO time, ``attributes`` dict).

Ids may be hex or base64, enums integers or names, 64-bit integers strings or numbers
(a JSON number past 64 bits is read as a float, as orjson does: a column refuses it as out
of range, the raw attributes keep the float).
Attributes of the OTel GenAI conventions (new and deprecated names), OpenInference and
OpenLLMetry land in the same columns (``docs/schema.md``; the raw attributes are kept too).

Tokens follow the OTel convention: ``input_tokens`` includes cache reads and writes, which
also have columns of their own (0 when the attribute says 0, NULL when it is absent). A
record counts its input without the cache, and gets the cache added, when its provider is
Anthropic and it uses the Anthropic API names (``gen_ai.usage.cache_read_input_tokens``,
``..._creation_input_tokens``), or when its input is smaller than its cache counts. The
OTel names (``gen_ai.usage.cache_read.input_tokens``) and OpenInference's prompt details are
parts of the input by definition. So one call recorded either way gives the same row and cost.

Each file is one transaction (with ``strict``, the whole call is one) written in batches;
``INSERT OR IGNORE`` on (trace_id, span_id) makes re-ingest a no-op, and ``trace_files``
keeps the sha256 of each file's (decompressed) content. A span without a route takes its
trace's: the root's, else the earliest routed span's. It is filled from the same batch, and
an UPDATE at the end of each file covers the traces left open (children in a later batch or
file than their root). A child ingested in an earlier file than its root keeps NULL.

Large inputs are parsed by two child processes, taking alternate chunks of lines, while this
one inserts the chunks in file order (``_pipeline``): the same rows and report as one reader.

Modules: ``_mapping`` (records to rows), ``_read`` (files to batches), ``_pipeline`` (the
parser processes), ``_ingest`` (transactions and inserts), ``_report``, ``_analysis``.
"""

from workbench.prices import load_prices as load_prices  # the CLI's --prices
from workbench.traces._analysis import spans_frame, window_clause
from workbench.traces._ingest import ingest, ingest_request
from workbench.traces._receiver import DEFAULT_PORT, TOKEN_ENV, Receiver, ReceiverStats, serve
from workbench.traces._report import MAX_ERRORS, IngestReport, render_text

__all__ = [
    "DEFAULT_PORT",
    "MAX_ERRORS",
    "TOKEN_ENV",
    "IngestReport",
    "Receiver",
    "ReceiverStats",
    "ingest",
    "ingest_request",
    "load_prices",
    "render_text",
    "serve",
    "spans_frame",
    "window_clause",
]
