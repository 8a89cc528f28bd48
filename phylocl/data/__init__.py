"""Data layer: alphabets, FASTA/ortholog-group readers, pair strategies, samplers and the DataModule."""

from phylocl.data.alphabet import DNA, PROTEIN, Alphabet, detect_alphabet, get_alphabet
from phylocl.data.tokens import pad_batch

__all__ = ["Alphabet", "PROTEIN", "DNA", "get_alphabet", "detect_alphabet", "pad_batch"]
