"""Every dataset in <repo>/../shared/data reads with the counts its README table and MANIFEST state.

Counts are taken from ``phylocl inspect --json`` (the CLI a user would run). Skipped when the shared data is absent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from phylocl.cli import main

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def readme_rows() -> list[tuple[str, str, int, int]]:
    """``(folder, alphabet, families, sequences)`` per dataset; combined rows (``10 + 4``) split by sub-folder."""
    rows = []
    for line in (SHARED / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not re.fullmatch(r"[\d,+ ]+", cells[2]) or cells[0] == "folder":
            continue
        alphabets = [a.strip().lower() for a in cells[1].split("+")]
        fams = [int(x.replace(",", "")) for x in cells[2].split("+")]
        seqs = [int(x.replace(",", "")) for x in cells[3].split("+")]
        if len(fams) == 1:
            rows.append((cells[0], alphabets[0], fams[0], seqs[0]))
        else:
            rows += [(f"{cells[0]}/{a}", a, f, s) for a, f, s in zip(alphabets, fams, seqs)]
    return rows


def manifest_counts(folder: str) -> dict | None:
    """Counts of the MANIFEST's ``## Counts`` section (or ``### <sub-folder>`` section)."""
    top, _, sub = folder.partition("/")
    path = SHARED / top / "MANIFEST.md"
    if not path.is_file():
        return None
    text = path.read_text()
    if sub:
        m = re.search(rf"^### {re.escape(sub)}\n(.*?)(?=^##|\Z)", text, flags=re.M | re.S)
        text = m.group(1) if m else ""
    out = {}
    for key, name in (("families", "families"), ("sequences", "sequences")):
        m = re.search(rf"^- {name}: ([\d,]+)", text, flags=re.M)
        if m:
            out[key] = int(m.group(1).replace(",", ""))
    for key, name in (("family_size", "sequences per family"), ("length", "sequence length")):
        m = re.search(rf"^- {name}: min ([\d.]+) / median ([\d.]+) / max ([\d.]+)", text, flags=re.M)
        if m:
            out[key] = tuple(float(x) for x in m.groups())
    return out


ROWS = readme_rows() if (SHARED / "README.md").is_file() else []


def test_readme_lists_datasets(shared_data):
    assert len(ROWS) >= 10


@pytest.mark.parametrize("folder, alphabet, families, sequences", ROWS, ids=[r[0] for r in ROWS])
def test_inspect_counts_match_readme_and_manifest(shared_data, capsys, folder, alphabet, families, sequences):
    assert main(["inspect", str(shared_data / folder), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["families"], got["sequences"], got["alphabet"]) == (families, sequences, alphabet)
    manifest = manifest_counts(folder)
    if manifest and manifest.get("sequences") == sequences:  # the MANIFEST describes this copy
        assert manifest["families"] == families
        assert (got["min_family_size"], got["median_family_size"], got["max_family_size"]) == manifest["family_size"]
        assert (got["median_length"], got["max_length"]) == manifest["length"][1:]
        assert got["min_length"] == manifest["length"][0]
        assert got["skipped"] == families - got["pair_families"]
