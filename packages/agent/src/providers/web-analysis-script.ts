/**
 * The Python analysis of the offline model's web research plan: it summarises the pages that
 * web-fetch saved under sources/, given as arguments. Tables (CSV, or JSON lists of objects)
 * get per-column figures; other text gets its size only — the plan cites pages, it does not
 * pretend to read them for meaning. Standard library only: the sandbox image may have no pandas.
 * It prints the same JSON it writes to source_analysis.json.
 */
export const WEB_ANALYSIS_SCRIPT = `"""Summarise the sources fetched from the web (standard library only)."""
import csv
import io
import json
import os
import re
import sys

NUMBER = re.compile(r"^[-+]?(\\d+(\\.\\d*)?|\\.\\d+)([eE][-+]?\\d+)?$")
TIME = re.compile(r"(?i)^(year|date|period|month|quarter|week|day|time)\\b")


def number(cell):
    text = cell.strip().replace(",", "").rstrip("%")
    return float(text) if NUMBER.match(text) else None


def table(header, rows, path):
    rows = [r for r in rows if any(c.strip() for c in r)]
    # Rows are labelled by a time column if there is one (a year is a number, not a figure),
    # else by the first column that is not numeric.
    label = next((i for i, name in enumerate(header) if TIME.match(name.strip())), None)
    columns = []
    for i, name in enumerate(header):
        if i == label:
            continue
        cells = [r[i] if i < len(r) else "" for r in rows]
        present = [v for v in (number(c) for c in cells) if v is not None]
        if not present or len(present) < len(rows) // 2:
            if label is None:
                label = i
            continue
        first, last = present[0], present[-1]
        columns.append({
            "name": name.strip(),
            "count": len(present),
            "first": first,
            "last": last,
            "min": min(present),
            "max": max(present),
            "mean": round(sum(present) / len(present), 4),
            "changePct": round((last / first - 1.0) * 100.0, 2) if first else None,
        })
    labels = [r[label].strip() if label is not None and label < len(r) else "" for r in rows]
    return {
        "path": path,
        "kind": "table",
        "rows": len(rows),
        "labelColumn": header[label].strip() if label is not None else None,
        "firstLabel": labels[0] if labels else None,
        "lastLabel": labels[-1] if labels else None,
        "columns": columns,
    }


def summarise(path):
    with open(path, "rb") as handle:
        raw = handle.read()
    text = raw.decode("utf-8", errors="replace")
    if path.endswith(".csv"):
        rows = list(csv.reader(io.StringIO(text)))
        if not rows:
            return {"path": path, "kind": "table", "rows": 0, "columns": []}
        return table(rows[0], rows[1:], path)
    if path.endswith(".json"):
        data = json.loads(text)
        if isinstance(data, list) and data and all(isinstance(d, dict) for d in data):
            header = list(dict.fromkeys(k for d in data for k in d))
            return table(header, [[str(d.get(k, "")) for k in header] for d in data], path)
        return {"path": path, "kind": "json", "type": type(data).__name__, "bytes": len(raw)}
    return {"path": path, "kind": "text", "bytes": len(raw), "words": len(text.split()), "lines": text.count("\\n") + 1}


results = []
for path in sys.argv[1:]:
    if os.path.isabs(path) or ".." in path.split("/") or not path.startswith("sources/"):
        results.append({"path": path, "kind": "error", "error": "not a file under sources/"})
        continue
    try:
        results.append(summarise(path))
    except (OSError, ValueError) as err:
        results.append({"path": path, "kind": "error", "error": type(err).__name__ + ": " + str(err)[:200]})

output = {"script": "analyze_sources.py", "sources": results}
with open("source_analysis.json", "w") as handle:
    json.dump(output, handle, indent=2)
print(json.dumps(output, indent=2))
`;
