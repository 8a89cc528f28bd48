"""The no-``--model`` default: chosen from the shipped dev-figures table by mean dev AUC1, reported in outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from phylocl.cli import main
from phylocl.errors import InputError
from phylocl.retrieval.embedding_files import load_embeddings
from phylocl.workflows.defaults import DEV_FIGURES, choose_default, read_dev_figures


def _table(tmp_path, protein, dna=None):
    path = tmp_path / "dev-figures.json"
    path.write_text(json.dumps({"protein": protein, "dna": dna or {"kmer:5": {"x": 0.5}}}))
    return path


def test_shipped_table_picks_the_best_mean_auc1():
    table = read_dev_figures()
    for alphabet in ("protein", "dna"):
        choice = choose_default(alphabet, shipped=[f"default-{alphabet}"])
        means = {m: float(np.mean(list(c.values()))) for m, c in table[alphabet].items()}  # reference
        assert choice.score == pytest.approx(max(means.values()))
        assert means[choice.spec] == pytest.approx(max(means.values()))
        assert [s for s, _ in choice.ranking] == sorted(means, key=lambda m: -means[m])
    # docs/models.md: the k-mer profile encoders are above kmer:3 (protein) and kmer:5 (DNA) on the dev sets
    assert choose_default("protein", shipped=["default-protein"]).spec == "default-protein"
    assert choose_default("protein", shipped=[]).spec == "kmer:3"  # not installed: the baseline
    assert choose_default("dna", shipped=["default-dna"]).spec == "default-dna"
    assert choose_default("dna", shipped=[]).spec == "kmer:5"


def test_an_encoder_is_chosen_only_when_it_measures_better_and_is_installed(tmp_path):
    better = _table(tmp_path, {"kmer:3": {"a": 0.6, "b": 0.2}, "enc": {"a": 0.5, "b": 0.4}})
    assert choose_default("protein", shipped=["enc"], path=better).spec == "enc"  # 0.45 > 0.40
    missing = choose_default("protein", shipped=[], path=better)
    assert missing.spec == "kmer:3" and missing.skipped == ("enc",)
    assert "not installed: enc" in missing.describe()
    tie = _table(tmp_path, {"kmer:3": {"a": 0.5}, "enc": {"a": 0.5}})
    assert choose_default("protein", shipped=["enc"], path=tie).spec == "kmer:3"  # ties: first listed


@pytest.mark.parametrize("protein, message", [
    ({}, "no 'protein' methods"),
    ({"kmer:3": {"a": 0.5}, "enc": {"b": 0.5}}, "scores other dev sets"),
    ({"kmer:3": {"a": 1.5}}, "numbers in [0, 1]"),
    ({"enc": {"a": 0.5}}, "no usable protein method"),
])
def test_bad_tables_are_named(tmp_path, protein, message):
    path = _table(tmp_path, protein)
    with pytest.raises(InputError, match="dev-figures.json") as err:
        choose_default("protein", shipped=[], path=path)
    assert message in str(err.value)


def test_embed_and_evaluate_without_model_say_what_they_used(tmp_path, capsys):
    fasta = tmp_path / "s.fasta"
    fasta.write_text(">a\nACGTACGTAAGGTTCC\n>b\nACGTACGTAAGGTTCA\n>c\nTTTTGGGGCCCCAAAA\n>d\nTTTTGGGGCCCCAAAT\n")
    labels = tmp_path / "labels.tsv"
    labels.write_text("sequence_id\tfamily_id\na\tf1\nb\tf1\nc\tf2\nd\tf2\n")
    assert main(["embed", "--fasta", str(fasta), "-o", str(tmp_path / "e.npz"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "(dim 49152, model default-dna)" in captured.out
    assert any(line.startswith("phylocl embed: note: no --model given: using default-dna, the best measured dna")
               for line in captured.err.splitlines())
    assert load_embeddings(tmp_path / "e.npz").model["default_choice"]["spec"] == "default-dna"
    assert main(["evaluate", "--data", str(fasta), "--labels", str(labels), "--json", "--quiet"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["model"]["name"] == "default-dna" and result["model"]["default_choice"]["alphabet"] == "dna"
    assert "phylocl evaluate: note: no --model given: using default-dna" in captured.err
    assert main(["embed", "--model", "kmer:3", "--fasta", str(fasta), "-o", str(tmp_path / "f.npz"),
                 "--quiet"]) == 0
    assert "note" not in capsys.readouterr().err


def test_table_is_packaged():
    assert DEV_FIGURES.is_file() and DEV_FIGURES.parent.name == "pretrained"


def test_shipped_table_carries_recall_at_300_for_every_method():
    """Issue 24: the table is written by ``benchmarks/ablation.py figures`` with recall@300 beside AUC1, for the same
    methods and dev sets; the default is still chosen by AUC1 (read_dev_figures reads only the AUC1 part)."""
    raw = json.loads(DEV_FIGURES.read_text())
    assert "benchmarks/ablation.py figures" in raw["source"]
    auc1 = read_dev_figures()
    for alphabet, methods in auc1.items():
        recall = raw["recall@300"][alphabet]
        assert set(recall) == set(methods)
        for method, cells in methods.items():
            assert set(recall[method]) == set(cells)
            assert all(0.0 <= v <= 1.0 for v in recall[method].values())
    decoys = raw["recall@300_decoys"]["protein"]
    assert set(decoys) == set(auc1["protein"])


def test_shipped_table_measured_each_method_on_its_default_search_path():
    """Issue 24: dev-figures.json scores every method as a user gets it without ``--windows`` (``default-protein``:
    tiles of 200 from its search.json; whole rows otherwise). Changing a model's search.json fails this until the
    table is re-measured (``python benchmarks/ablation.py figures --decoys protein``)."""
    from phylocl.workflows.model_spec import resolve_model
    from phylocl.workflows.windows import resolve_windows

    raw = json.loads(DEV_FIGURES.read_text())
    for alphabet, methods in read_dev_figures().items():
        for method in methods:
            cut = resolve_windows(None, resolve_model(method, alphabet=alphabet))
            assert raw["search"][alphabet][method] == (cut.params() if cut else {"window": 0}), method
    assert raw["search"]["protein"]["default-protein"]["window"] == 200  # docs/retrieval.md's default


@pytest.mark.parametrize("spec", ["kmer:2", None])
def test_a_misspelt_precision_is_refused_for_every_model(spec):
    """``precision="fp8"`` was accepted with ``kmer:K`` (which ignores precision) and refused for encoders."""
    from phylocl.workflows.model_spec import resolve_model

    with pytest.raises(InputError, match="unknown precision 'fp8'"):
        resolve_model(spec, alphabet="protein", precision="fp8")
